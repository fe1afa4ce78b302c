package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
)

// testNet is a small network of test hosts: a hub namespace holding a bridge, one network
// namespace per node wired to it by a veth pair, and a veth from the test's own namespace
// so that the test reaches every node's address. Everything is created by the test under
// unique names in 10.201.K.0/24 and removed when it ends; host-wide settings are not touched.
type testNet struct {
	t      testing.TB
	prefix string // name prefix of every namespace and link
	subnet string // "10.201.K"
	hub    string // hub namespace
	nodes  []string
	extra  []string // namespaces that are not nodes
}

var netCounter atomic.Int32

func newTestNet(t testing.TB) *testNet {
	t.Helper()
	k := freeSubnet(t)
	n := &testNet{t: t, prefix: fmt.Sprintf("sh%d%d", os.Getpid()%10000, k), subnet: fmt.Sprintf("10.201.%d", k)}
	n.hub = n.prefix + "hub"
	t.Cleanup(n.close)
	n.ip("netns", "add", n.hub)
	n.ipIn(n.hub, "link", "set", "lo", "up")
	n.ipIn(n.hub, "link", "add", "br0", "type", "bridge")
	n.ipIn(n.hub, "link", "set", "br0", "up")
	// The test's own leg: host side keeps .254.
	n.ip("link", "add", n.prefix+"h", "type", "veth", "peer", "name", n.prefix+"hp")
	n.ip("link", "set", n.prefix+"hp", "netns", n.hub)
	n.ipIn(n.hub, "link", "set", n.prefix+"hp", "master", "br0", "up")
	n.ip("addr", "add", n.subnet+".254/24", "dev", n.prefix+"h")
	n.ip("link", "set", n.prefix+"h", "up")
	return n
}

// freeSubnet picks K for 10.201.K.0/24 that no interface of this host uses, so that a test
// never collides with leftovers of a test binary that was killed before its cleanup.
func freeSubnet(t testing.TB) int {
	out, err := exec.Command("ip", "-br", "addr").Output()
	if err != nil {
		t.Fatalf("ip addr: %v", err)
	}
	for try := 0; try < 200; try++ {
		k := 10 + (os.Getpid()+int(netCounter.Add(1)))%240
		if !strings.Contains(string(out), fmt.Sprintf(" 10.201.%d.", k)) {
			return k
		}
	}
	t.Fatal("no free 10.201.K.0/24 subnet")
	return 0
}

// addNode creates node i's namespace (address subnet.i) and returns the namespace name.
func (n *testNet) addNode(i int) string {
	n.t.Helper()
	ns := fmt.Sprintf("%sn%d", n.prefix, i)
	n.addHost(ns, i)
	n.nodes = append(n.nodes, ns)
	return ns
}

// addClient creates a namespace on the hub that is not a node (address subnet.i), for
// clients from outside the cluster, and returns its name.
func (n *testNet) addClient(i int) string {
	n.t.Helper()
	ns := fmt.Sprintf("%sc%d", n.prefix, i)
	n.addHost(ns, i)
	n.extra = append(n.extra, ns)
	return ns
}

// addHost creates namespace ns wired to the hub with address subnet.i.
func (n *testNet) addHost(ns string, i int) {
	n.t.Helper()
	inner, outer := ns+"i", ns+"o"
	n.ip("netns", "add", ns)
	n.ipIn(ns, "link", "set", "lo", "up")
	n.ip("link", "add", inner, "type", "veth", "peer", "name", outer)
	n.ip("link", "set", inner, "netns", ns)
	n.ip("link", "set", outer, "netns", n.hub)
	n.ipIn(n.hub, "link", "set", outer, "master", "br0", "up")
	n.ipIn(ns, "addr", "add", n.addr(i)+"/24", "dev", inner)
	n.ipIn(ns, "link", "set", inner, "up")
}

// addr is node i's address.
func (n *testNet) addr(i int) string { return fmt.Sprintf("%s.%d", n.subnet, i) }

// nsPath is the path a node's containers join.
func (n *testNet) nsPath(ns string) string { return "/var/run/netns/" + ns }

// cut partitions node i from every other node with blackhole routes on both sides, while
// the test's own address keeps reaching everyone (so it can watch both sides); heal undoes it.
func (n *testNet) cut(i int)  { n.routes(i, "add") }
func (n *testNet) heal(i int) { n.routes(i, "del") }

func (n *testNet) routes(i int, op string) {
	n.t.Helper()
	me := fmt.Sprintf("%sn%d", n.prefix, i)
	for _, other := range n.nodes {
		if other == me {
			continue
		}
		var j int
		fmt.Sscanf(strings.TrimPrefix(other, n.prefix+"n"), "%d", &j)
		n.between(i, j, op)
	}
}

// between adds ("add") or removes ("del") blackhole routes between nodes i and j.
func (n *testNet) between(i, j int, op string) {
	n.t.Helper()
	n.ipIn(fmt.Sprintf("%sn%d", n.prefix, i), "route", op, "blackhole", n.addr(j)+"/32")
	n.ipIn(fmt.Sprintf("%sn%d", n.prefix, j), "route", op, "blackhole", n.addr(i)+"/32")
}

func (n *testNet) close() {
	exec.Command("ip", "link", "del", n.prefix+"h").Run()
	for _, ns := range append(n.nodes, n.extra...) {
		exec.Command("ip", "netns", "del", ns).Run()
	}
	exec.Command("ip", "netns", "del", n.hub).Run()
}

func (n *testNet) ip(args ...string) {
	n.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		n.t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (n *testNet) ipIn(ns string, args ...string) { n.ip(append([]string{"-n", ns}, args...)...) }
