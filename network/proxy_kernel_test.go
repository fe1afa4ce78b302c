package network

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// These tests program a real kernel, in namespaces they create (see proxy_netns_test.go),
// and send real TCP and UDP traffic through it.

var proxyTestVIP = netip.MustParseAddr("10.96.0.10")

// webService is a Service with one TCP port 80 → 8080 and one UDP port 53 → 5353.
func (tb *proxyTestbed) webService(nodePort uint16, names ...string) Service {
	return Service{Namespace: "default", Name: "web", VIP: proxyTestVIP, Ports: []ServicePort{
		{Name: "http", Protocol: ProtocolTCP, Port: 80, NodePort: nodePort, Endpoints: tb.endpoints(ProtocolTCP, names...)},
		{Name: "dns", Protocol: ProtocolUDP, Port: 53, Endpoints: tb.endpoints(ProtocolUDP, names...)},
	}}
}

func proxyNoLeaks(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

func proxyMustSync(t *testing.T, p *Proxy, services ...Service) {
	t.Helper()
	if err := p.Sync(services); err != nil {
		t.Fatalf("Sync: %v", err)
	}
}

// proxyWantOnly fails unless seen holds exactly the names want (each at least once).
func proxyWantOnly(t *testing.T, what string, seen map[string]int, want ...string) {
	t.Helper()
	got := slices.Sorted(maps.Keys(seen))
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("%s reached %v (%v), want each of %v", what, got, seen, want)
	}
}

func TestProxyVIPSpreadsOverEndpoints(t *testing.T) {
	skipUnlessProxyKernel(t)
	proxyNoLeaks(t)
	tb := newProxyTestbed(t, "a", "b", "c")
	p := tb.proxy(t)
	proxyMustSync(t, p, tb.webService(0, "a", "b", "c"))

	// 60 connections miss one of three endpoints with probability 3·(2/3)^60 < 1e-10.
	vip := netip.AddrPortFrom(proxyTestVIP, 80)
	proxyWantOnly(t, "TCP VIP:80 from an instance", proxyAskMany(t, tb.pods["a"], ProtocolTCP, vip, 60), "a", "b", "c")
	proxyWantOnly(t, "UDP VIP:53 from an instance", proxyAskMany(t, tb.pods["b"], ProtocolUDP, netip.AddrPortFrom(proxyTestVIP, 53), 60), "a", "b", "c")
	// The node's own processes go through the output hook.
	proxyWantOnly(t, "TCP VIP:80 from the node", proxyAskMany(t, tb.node, ProtocolTCP, vip, 60), "a", "b", "c")

	// An instance on another node's subnet would keep its address; one on this node's
	// subnet is masqueraded to the bridge (so replies come back through the node).
	r, err := proxyAsk(tb.pods["a"], ProtocolTCP, vip)
	if err != nil {
		t.Fatal(err)
	}
	if r.remote.Addr() != proxyTestBridge {
		t.Errorf("endpoint saw the client at %v, want the bridge address %v", r.remote, proxyTestBridge)
	}
}

func TestProxyEndpointRemovedGetsNoNewConnections(t *testing.T) {
	skipUnlessProxyKernel(t)
	proxyNoLeaks(t)
	tb := newProxyTestbed(t, "a", "b", "c")
	p := tb.proxy(t)
	proxyMustSync(t, p, tb.webService(0, "a", "b", "c"))
	vip := netip.AddrPortFrom(proxyTestVIP, 80)
	proxyWantOnly(t, "before", proxyAskMany(t, tb.pods["a"], ProtocolTCP, vip, 60), "a", "b", "c")

	proxyMustSync(t, p, tb.webService(0, "a", "c"))
	proxyWantOnly(t, "after removing b", proxyAskMany(t, tb.pods["a"], ProtocolTCP, vip, 60), "a", "c")
	proxyWantOnly(t, "UDP after removing b", proxyAskMany(t, tb.pods["a"], ProtocolUDP, netip.AddrPortFrom(proxyTestVIP, 53), 60), "a", "c")

	proxyMustSync(t, p, tb.webService(0, "b"))
	proxyWantOnly(t, "after replacing all by b", proxyAskMany(t, tb.pods["c"], ProtocolTCP, vip, 20), "b")
	if eps := proxyListElements(t, tb.node, proxyServiceEndpointsMap); len(eps) != 2 {
		t.Errorf("%s after the sync holds %q, want b's TCP and UDP endpoints", proxyServiceEndpointsMap, eps)
	}
}

func TestProxyUDPFlowMovesOffRemovedEndpoint(t *testing.T) {
	skipUnlessProxyKernel(t)
	proxyNoLeaks(t)
	tb := newProxyTestbed(t, "a", "b", "c")
	p := tb.proxy(t)
	proxyMustSync(t, p, tb.webService(30053, "b"))
	// One socket, one 5-tuple, as a resolver that keeps its socket.
	var c net.Conn
	if err := tb.pods["a"].do(func() (err error) {
		c, err = net.Dial("udp4", netip.AddrPortFrom(proxyTestVIP, 53).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	askOn := func() string {
		t.Helper()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("hi")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		name, _, _ := strings.Cut(string(buf[:n]), " ")
		return name
	}
	if got := askOn(); got != "b" {
		t.Fatalf("first answer from %s, want b", got)
	}
	proxyMustSync(t, p, tb.webService(30053, "c")) // b leaves (its server still runs)
	if got := askOn(); got != "c" {
		t.Errorf("after b left, the same socket reached %s, want c", got)
	}
}

func TestProxyNoEndpointsRefusesAtOnce(t *testing.T) {
	skipUnlessProxyKernel(t)
	proxyNoLeaks(t)
	tb := newProxyTestbed(t, "a")
	p := tb.proxy(t)
	proxyMustSync(t, p, tb.webService(30080))

	for _, c := range []struct {
		what  string
		from  *proxyTestNetns
		proto Protocol
		to    netip.AddrPort
	}{
		{"TCP VIP from an instance", tb.pods["a"], ProtocolTCP, netip.AddrPortFrom(proxyTestVIP, 80)},
		{"TCP VIP from the node", tb.node, ProtocolTCP, netip.AddrPortFrom(proxyTestVIP, 80)},
		{"UDP VIP from an instance", tb.pods["a"], ProtocolUDP, netip.AddrPortFrom(proxyTestVIP, 53)},
		{"TCP NodePort from outside", tb.client, ProtocolTCP, netip.AddrPortFrom(proxyTestNode, 30080)},
		{"TCP NodePort from the node", tb.node, ProtocolTCP, netip.AddrPortFrom(proxyTestNode, 30080)},
	} {
		start := time.Now()
		_, err := proxyAsk(c.from, c.proto, c.to)
		took := time.Since(start)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("%s: err %v, want connection refused", c.what, err)
		}
		if took > 500*time.Millisecond {
			t.Errorf("%s: refused after %v, want at once", c.what, took)
		}
	}

	// Endpoints appear: the same Service now answers.
	proxyMustSync(t, p, tb.webService(30080, "a"))
	proxyWantOnly(t, "after an endpoint appears", proxyAskMany(t, tb.pods["a"], ProtocolTCP, netip.AddrPortFrom(proxyTestVIP, 80), 3), "a")
}

func TestProxyNodePort(t *testing.T) {
	skipUnlessProxyKernel(t)
	proxyNoLeaks(t)
	tb := newProxyTestbed(t, "a", "b")
	p := tb.proxy(t)
	proxyMustSync(t, p, tb.webService(30080, "a", "b"))

	nodePort := netip.AddrPortFrom(proxyTestNode, 30080)
	proxyWantOnly(t, "NodePort from outside the node", proxyAskMany(t, tb.client, ProtocolTCP, nodePort, 40), "a", "b")
	r, err := proxyAsk(tb.client, ProtocolTCP, nodePort)
	if err != nil {
		t.Fatal(err)
	}
	if r.remote.Addr() != proxyTestBridge {
		t.Errorf("endpoint saw the outside client at %v, want it masqueraded to %v", r.remote, proxyTestBridge)
	}
	proxyWantOnly(t, "NodePort from the node", proxyAskMany(t, tb.node, ProtocolTCP, nodePort, 40), "a", "b")
	// Any local address of the node, not only the one facing the client.
	proxyWantOnly(t, "NodePort on the bridge address from an instance",
		proxyAskMany(t, tb.pods["a"], ProtocolTCP, netip.AddrPortFrom(proxyTestBridge, 30080), 40), "a", "b")
	// The port is not open on addresses that are not the node's.
	if _, err := proxyAsk(tb.node, ProtocolTCP, netip.AddrPortFrom(proxyTestVIP, 30080)); err == nil {
		t.Errorf("VIP:nodePort answered; want nothing there")
	}
}

func TestProxyHairpin(t *testing.T) {
	skipUnlessProxyKernel(t)
	proxyNoLeaks(t)
	tb := newProxyTestbed(t, "a", "b")
	p := tb.proxy(t)
	// a calls its own Service, whose only endpoint is a.
	proxyMustSync(t, p, tb.webService(0, "a"))
	for _, proto := range []Protocol{ProtocolTCP, ProtocolUDP} {
		port := uint16(80)
		if proto == ProtocolUDP {
			port = 53
		}
		r, err := proxyAsk(tb.pods["a"], proto, netip.AddrPortFrom(proxyTestVIP, port))
		if err != nil {
			t.Fatalf("%s hairpin: %v", proto, err)
		}
		if r.name != "a" || r.remote.Addr() != proxyTestBridge {
			t.Errorf("%s hairpin: reached %s, seen from %v; want a, from %v", proto, r.name, r.remote, proxyTestBridge)
		}
	}
}

func TestProxyPodEgressMasquerade(t *testing.T) {
	skipUnlessProxyKernel(t)
	proxyNoLeaks(t)
	tb := newProxyTestbed(t, "a")
	tb.servers.serveTCP(t, tb.client, proxyTestClient.String()+":9000", "outside")
	outside := netip.AddrPortFrom(proxyTestClient, 9000)
	// Without the proxy the outside has no route back to the pod range.
	if _, err := proxyAsk(tb.pods["a"], ProtocolTCP, outside); err == nil {
		t.Fatal("outside reached without masquerade; the test proves nothing")
	}
	p := tb.proxy(t)
	proxyMustSync(t, p)
	r, err := proxyAsk(tb.pods["a"], ProtocolTCP, outside)
	if err != nil {
		t.Fatalf("egress: %v", err)
	}
	if r.remote.Addr() != proxyTestNode {
		t.Errorf("outside saw the instance at %v, want the node's address %v", r.remote, proxyTestNode)
	}
	// Between instances, no NAT: b would see a's own address (checked on the node itself).
	if r, err := proxyAsk(tb.node, ProtocolTCP, netip.AddrPortFrom(tb.podAddr["a"], proxyTestTCPPort)); err != nil || r.remote.Addr() == proxyTestNode {
		t.Errorf("node to instance: %v, %v", r, err)
	}
}

func TestProxyRestartTakesOverTable(t *testing.T) {
	skipUnlessProxyKernel(t)
	proxyNoLeaks(t)
	tb := newProxyTestbed(t, "a", "b")
	cfg := ProxyConfig{ClusterCIDR: proxyTestCluster, PodSubnet: proxyTestPodSubnet, NetNS: tb.node.path}
	first, err := NewProxy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	proxyMustSync(t, first, tb.webService(30080, "a", "b"))
	if err := first.Detach(); err != nil { // the daemon dies; its rules stay
		t.Fatal(err)
	}
	vip := netip.AddrPortFrom(proxyTestVIP, 80)
	proxyWantOnly(t, "while no daemon runs", proxyAskMany(t, tb.pods["a"], ProtocolTCP, vip, 40), "a", "b")

	// Something the old daemon (or anyone) left in the table goes with the first sync.
	tb.node.run(t, "nft", "add chain ip shoal left-behind")
	second, err := NewProxy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	proxyWantOnly(t, "after the new daemon starts, before its first sync", proxyAskMany(t, tb.pods["a"], ProtocolTCP, vip, 40), "a", "b")
	proxyMustSync(t, second, tb.webService(30080, "b"))
	proxyWantOnly(t, "after the new daemon's first sync", proxyAskMany(t, tb.pods["a"], ProtocolTCP, vip, 20), "b")
	if tables := proxyListTables(t, tb.node); !slices.Equal(tables, []string{"table ip shoal"}) {
		t.Errorf("tables after restart: %q, want exactly one", tables)
	}
	if out := tb.node.run(t, "nft", "list", "chains", "ip"); strings.Contains(out, "left-behind") {
		t.Errorf("the first sync kept a chain it did not make:\n%s", out)
	}
	proxyMustSync(t, second, tb.webService(30080, "a")) // and incremental syncs go on from there
	proxyWantOnly(t, "after a second sync", proxyAskMany(t, tb.client, ProtocolTCP, netip.AddrPortFrom(proxyTestNode, 30080), 10), "a")

	if err := second.Close(); err != nil {
		t.Fatal(err)
	}
	if rules := strings.TrimSpace(tb.node.run(t, "nft", "list", "ruleset")); rules != "" {
		t.Errorf("after Close the namespace still holds:\n%s", rules)
	}
	if _, err := proxyAsk(tb.pods["a"], ProtocolTCP, vip); err == nil {
		t.Error("VIP still answers after Close")
	}
	if err := second.Sync(nil); !errors.Is(err, ErrProxyClosed) {
		t.Errorf("Sync after Close: %v, want ErrProxyClosed", err)
	}
}

// TestProxyAtLimits programs the most one Sync accepts: every limit reached at once, with
// a NodePort on half the ports. It must fit in one transaction, and a change must stay cheap.
func TestProxyAtLimits(t *testing.T) {
	skipUnlessProxyKernel(t)
	proxyNoLeaks(t)
	ns := newProxyTestNetns(t, proxyTestPrefix(t), "limits")
	p, err := NewProxy(ProxyConfig{ClusterCIDR: netip.MustParsePrefix("10.128.0.0/9"), NetNS: ns.path})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	perPort := MaxProxyEndpoints / MaxProxyServicePorts
	services := make([]Service, MaxProxyServices)
	for i := range services {
		s := Service{Namespace: "limits", Name: fmt.Sprint("svc-", i), VIP: netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)})}
		for j, proto := range []Protocol{ProtocolTCP, ProtocolUDP} {
			sp := ServicePort{Name: string(proto), Protocol: proto, Port: 80}
			if j == 0 {
				sp.NodePort = uint16(30000 + i)
			}
			for k := range perPort {
				sp.Endpoints = append(sp.Endpoints, Endpoint{netip.AddrFrom4([4]byte{10, byte(128 + k), byte(i >> 8), byte(i)}), 8080})
			}
			s.Ports = append(s.Ports, sp)
		}
		services[i] = s
	}
	start := time.Now()
	proxyMustSync(t, p, services...)
	t.Logf("whole table: %d services, %d ports, %d endpoints in %v", MaxProxyServices, MaxProxyServicePorts, MaxProxyEndpoints, time.Since(start))
	for _, c := range []struct {
		what string
		edit func([]Endpoint) []Endpoint
	}{
		{"replace one endpoint", func(e []Endpoint) []Endpoint { e[0].Port = 8081; return e }},
		{"remove one endpoint", func(e []Endpoint) []Endpoint { return e[1:] }},
	} {
		services[7].Ports[0].Endpoints = c.edit(services[7].Ports[0].Endpoints)
		start = time.Now()
		proxyMustSync(t, p, services...)
		if took := time.Since(start); took > time.Second {
			t.Errorf("%s at the limits took %v", c.what, took)
		} else {
			t.Logf("%s: %v (in memory %v, kernel %v)", c.what, took, p.last.inMemory, p.last.kernel)
		}
	}
}

func TestProxySyncProgramsWhatIsValid(t *testing.T) {
	skipUnlessProxyKernel(t)
	proxyNoLeaks(t)
	tb := newProxyTestbed(t, "a", "b")
	p := tb.proxy(t)
	web := tb.webService(0, "a")
	thief := tb.webService(0, "b") // same VIP and ports, later name: loses them
	thief.Namespace = "other"
	bad := tb.webService(0, "b")
	bad.Name, bad.VIP = "bad", tb.podAddr["b"] // a VIP inside the pod range
	err := p.Sync([]Service{thief, bad, web})
	if !errors.Is(err, ErrServiceRefused) {
		t.Fatalf("Sync: %v, want ErrServiceRefused", err)
	}
	for _, want := range []string{"other/web/tcp/http: TCP 10.96.0.10:80 is already default/web/tcp/http's", "inside the cluster CIDR"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Sync: %v, want it to say %q", err, want)
		}
	}
	vip := netip.AddrPortFrom(proxyTestVIP, 80)
	proxyWantOnly(t, "the valid Service", proxyAskMany(t, tb.pods["b"], ProtocolTCP, vip, 10), "a")

	// Over a limit: refused whole, nothing changes.
	err = p.Sync(slices.Repeat([]Service{tb.webService(0)}, MaxProxyServices+1))
	if !errors.Is(err, ErrProxyLimit) {
		t.Fatalf("Sync over the limit: %v, want ErrProxyLimit", err)
	}
	proxyWantOnly(t, "after a refused sync", proxyAskMany(t, tb.pods["b"], ProtocolTCP, vip, 10), "a")
}

// proxyListElements lists the elements of one of the shoal table's maps or sets with the nft
// binary (tests only).
func proxyListElements(t *testing.T, ns *proxyTestNetns, set string) []string {
	t.Helper()
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs the nft binary to inspect the table")
	}
	kind := "set"
	if proxySets[set].data.Name != "" {
		kind = "map"
	}
	out := ns.run(t, "nft", "list", kind, "ip", "shoal", set)
	_, elems, ok := strings.Cut(out, "elements = {")
	if !ok {
		return nil
	}
	elems, _, _ = strings.Cut(elems, "}")
	var list []string
	for _, e := range strings.Split(elems, ",") {
		list = append(list, strings.TrimSpace(e))
	}
	return list
}

func proxyListTables(t *testing.T, ns *proxyTestNetns) []string {
	t.Helper()
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs the nft binary to inspect the table")
	}
	return strings.Split(strings.TrimSpace(ns.run(t, "nft", "list", "tables")), "\n")
}
