package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// testSubnet is the pod subnet of the tests' nodes: inside their own namespaces only.
var testSubnet = netip.MustParsePrefix("10.244.7.0/24")

// testNode is a node namespace with a PodNetwork whose bridge lives in it.
type testNode struct {
	ns  string
	cfg PodNetworkConfig
	pn  *PodNetwork
}

// newTestNode makes a node namespace and a PodNetwork with its state in a temporary
// directory and the pod subnet set. When the test ends, it detaches whatever is left.
func newTestNode(t *testing.T) *testNode {
	t.Helper()
	skipUnlessRoot(t)
	n := &testNode{ns: newNodeNS(t)}
	n.cfg = PodNetworkConfig{StateDir: t.TempDir(), Bridge: testName(t), NodeNetNS: n.ns}
	n.pn = n.open(t)
	t.Cleanup(func() {
		// Unmount what a failed test left, before t.TempDir's removal trips over the mounts.
		if err := n.pn.Collect(context.Background(), func(string) bool { return false }); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return n
}

// open makes a PodNetwork on the node's state directory, as a restarted daemon would.
func (n *testNode) open(t *testing.T) *PodNetwork {
	t.Helper()
	pn, err := NewPodNetwork(n.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := pn.SetSubnet(testSubnet); err != nil {
		t.Fatal(err)
	}
	return pn
}

func (n *testNode) attach(t *testing.T, id string, ports ...PortMapping) Attachment {
	t.Helper()
	a, err := n.pn.Attach(context.Background(), id, netip.Addr{}, ports)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// veths are the host ends of instances' interfaces in the node's namespace.
func (n *testNode) veths(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(runIn(t, n.ns, "ip", "-o", "link", "show", "type", "veth"), "\n") {
		if _, rest, ok := strings.Cut(line, ": "); ok {
			name, _, _ := strings.Cut(rest, "@")
			out = append(out, name)
		}
	}
	return out
}

// ipamFiles are host-local's reservation files, by address.
func (n *testNode) ipamFiles(t *testing.T) []string {
	t.Helper()
	names, err := dirNames(filepath.Join(n.cfg.StateDir, "ipam", "shoal"), func(name string) (string, bool) {
		_, err := netip.ParseAddr(name)
		return name, err == nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// Two instances get addresses of their own in the subnet, and reach each other and the
// gateway over TCP; the node reaches both.
func TestAttachedInstancesReachEachOther(t *testing.T) {
	n := newTestNode(t)
	a, b := n.attach(t, "web-0"), n.attach(t, "web-1")
	gateway := testSubnet.Addr().Next()
	for _, at := range []Attachment{a, b} {
		if !testSubnet.Contains(at.Addr) || at.Addr == gateway || at.Addr == testSubnet.Addr() {
			t.Errorf("%s got %v, want a host address of %v other than the gateway", at.ID, at.Addr, testSubnet)
		}
		if !IsNetNS(at.Netns) || !strings.HasPrefix(at.Netns, n.cfg.StateDir) {
			t.Errorf("%s's namespace %s is not a namespace under the state directory", at.ID, at.Netns)
		}
	}
	if a.Addr == b.Addr {
		t.Fatalf("both instances got %v", a.Addr)
	}
	replies := map[string]string{"web-0": "I am web-0", "web-1": "I am web-1", "gateway": "I am the node"}
	servers := map[string]string{
		"web-0":   listenIn(t, a.Netns, netip.AddrPortFrom(a.Addr, 8080).String(), replies["web-0"]).String(),
		"web-1":   listenIn(t, b.Netns, netip.AddrPortFrom(b.Addr, 8080).String(), replies["web-1"]).String(),
		"gateway": listenIn(t, n.ns, netip.AddrPortFrom(gateway, 9000).String(), replies["gateway"]).String(),
	}
	for _, c := range []struct{ from, fromName, to string }{
		{a.Netns, "web-0", "web-1"}, {b.Netns, "web-1", "web-0"},
		{a.Netns, "web-0", "gateway"}, {b.Netns, "web-1", "gateway"},
		{n.ns, "node", "web-0"}, {n.ns, "node", "web-1"},
	} {
		if got, err := dialFrom(c.from, servers[c.to]); got != replies[c.to] {
			t.Errorf("%s -> %s (%s): %q, %v", c.fromName, c.to, servers[c.to], got, err)
		}
	}
	// Each instance sees its own loopback up and its address on eth0.
	out := runIn(t, a.Netns, "ip", "-o", "addr", "show")
	if !strings.Contains(out, "lo ") || !strings.Contains(out, "eth0") || !strings.Contains(out, a.Addr.String()+"/24") {
		t.Errorf("addresses in web-0's namespace:\n%s", out)
	}
	// Nothing of it is in the test's own namespace.
	if own, _ := net.InterfaceByName(n.cfg.Bridge); own != nil {
		t.Errorf("bridge %s exists in the test's own namespace", n.cfg.Bridge)
	}
}

// Detach removes the namespace, the host end of the veth, the IPAM reservation, the
// libcni cache entry and the record; a second Detach is a no-op.
func TestDetachRemovesEverything(t *testing.T) {
	n := newTestNode(t)
	a := n.attach(t, "api-0")
	if len(n.veths(t)) != 1 || len(n.ipamFiles(t)) != 1 {
		t.Fatalf("after Attach: veths %v, IPAM files %v; want one each", n.veths(t), n.ipamFiles(t))
	}
	if _, err := os.Stat(n.pn.cachePath("api-0")); err != nil {
		t.Fatalf("libcni cache entry: %v", err)
	}
	ctx := context.Background()
	if err := n.pn.Detach(ctx, "api-0"); err != nil {
		t.Fatal(err)
	}
	if v, f := n.veths(t), n.ipamFiles(t); len(v) != 0 || len(f) != 0 {
		t.Errorf("after Detach: veths %v, IPAM files %v; want none", v, f)
	}
	for _, p := range []string{a.Netns, n.pn.cachePath("api-0"), n.pn.recordPath("api-0")} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after Detach, %s: %v; want it gone", p, err)
		}
	}
	if err := n.pn.Detach(ctx, "api-0"); err != nil {
		t.Errorf("second Detach: %v", err)
	}
	if got, err := n.pn.Attachments(); err != nil || len(got) != 0 {
		t.Errorf("Attachments after Detach = %v, %v", got, err)
	}
}

// Attach of an ID already attached gives the same attachment and reserves nothing more.
func TestAttachIsIdempotent(t *testing.T) {
	n := newTestNode(t)
	first := n.attach(t, "db-0")
	again := n.attach(t, "db-0")
	if again != first {
		t.Errorf("second Attach = %+v, first %+v", again, first)
	}
	if v, f := n.veths(t), n.ipamFiles(t); len(v) != 1 || len(f) != 1 {
		t.Errorf("after two Attach: veths %v, IPAM files %v; want one each", v, f)
	}
}

// After a crash, a new PodNetwork on the same state directory finds the attachments with
// their addresses, and Collect removes every trace of those not kept, including ones a
// crash left half done.
func TestCollectAfterCrash(t *testing.T) {
	n := newTestNode(t)
	var before []Attachment
	for _, id := range []string{"a-0", "b-0", "c-0", "d-0"} {
		before = append(before, n.attach(t, id))
	}
	// d-0 crashed between the plugins' ADD and the record's address (cache written),
	// c-0 during the ADD (address reserved, nothing cached).
	rec, err := n.pn.readRecord("d-0")
	if err != nil {
		t.Fatal(err)
	}
	rec.Addr = netip.Addr{}
	if err := n.pn.writeRecord("d-0", rec); err != nil {
		t.Fatal(err)
	}
	if err := n.pn.writeRecord("c-0", rec); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(n.pn.cachePath("c-0")); err != nil {
		t.Fatal(err)
	}

	restarted := n.open(t)
	got, err := restarted.Attachments()
	if err != nil {
		t.Fatal(err)
	}
	if want := before[:2]; !slices.Equal(got, want) {
		t.Errorf("Attachments after a restart = %+v, want the complete ones %+v", got, want)
	}
	ctx := context.Background()
	if err := restarted.Collect(ctx, func(id string) bool { return id == "b-0" }); err != nil {
		t.Fatal(err)
	}
	if got, _ := restarted.Attachments(); len(got) != 1 || got[0] != before[1] {
		t.Errorf("after Collect keeping b-0: %+v", got)
	}
	if v, f := n.veths(t), n.ipamFiles(t); len(v) != 1 || len(f) != 1 {
		t.Errorf("after Collect keeping b-0: veths %v, IPAM files %v; want one each", v, f)
	}
	if ids, _ := restarted.foundIDs(); !slices.Equal(ids, []string{"b-0"}) {
		t.Errorf("state left after Collect belongs to %v, want b-0 only", ids)
	}
	// The kept one still works: its address answers from the node.
	listenIn(t, before[1].Netns, netip.AddrPortFrom(before[1].Addr, 80).String(), "still here")
	if got, err := dialFrom(n.ns, netip.AddrPortFrom(before[1].Addr, 80).String()); got != "still here" {
		t.Errorf("kept instance after Collect: %q, %v", got, err)
	}
	if err := restarted.Collect(ctx, func(string) bool { return false }); err != nil {
		t.Fatal(err)
	}
	if ids, _ := restarted.foundIDs(); len(ids) != 0 {
		t.Errorf("after Collect keeping nothing, state left for %v", ids)
	}
	if v, f := n.veths(t), n.ipamFiles(t); len(v) != 0 || len(f) != 0 {
		t.Errorf("after Collect keeping nothing: veths %v, IPAM files %v", v, f)
	}
	if entries, _ := os.ReadDir(filepath.Join(n.cfg.StateDir, "netns")); len(entries) != 0 {
		t.Errorf("namespaces left: %v", entries)
	}
}

// An Attach that finds a half-done one for its ID undoes it and attaches afresh.
func TestAttachRedoesHalfDone(t *testing.T) {
	n := newTestNode(t)
	first := n.attach(t, "half-0")
	rec, _ := n.pn.readRecord("half-0")
	rec.Addr = netip.Addr{}
	n.pn.writeRecord("half-0", rec)
	again := n.attach(t, "half-0")
	if again.Netns != first.Netns || !again.Addr.IsValid() {
		t.Errorf("Attach over a half-done one = %+v", again)
	}
	if v, f := n.veths(t), n.ipamFiles(t); len(v) != 1 || len(f) != 1 {
		t.Errorf("veths %v, IPAM files %v; want one each", v, f)
	}
}

// IDs that are not DNS labels are refused before anything is made.
func TestInvalidIDsRefused(t *testing.T) {
	n := newTestNode(t)
	ctx := context.Background()
	for _, id := range invalidIDs {
		if _, err := n.pn.Attach(ctx, id, netip.Addr{}, nil); !errors.Is(err, ErrInvalidID) {
			t.Errorf("Attach(%q) = %v, want ErrInvalidID", id, err)
		}
		if err := n.pn.Detach(ctx, id); !errors.Is(err, ErrInvalidID) {
			t.Errorf("Detach(%q) = %v, want ErrInvalidID", id, err)
		}
	}
	if ids, _ := n.pn.foundIDs(); len(ids) != 0 {
		t.Errorf("refused IDs left state for %v", ids)
	}
}

// Attach before the subnet is known fails with ErrNoSubnet and leaves nothing.
func TestAttachWithoutSubnet(t *testing.T) {
	n := newTestNode(t)
	pn, err := NewPodNetwork(n.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pn.Attach(context.Background(), "early-0", netip.Addr{}, nil); !errors.Is(err, ErrNoSubnet) {
		t.Errorf("Attach before SetSubnet = %v, want ErrNoSubnet", err)
	}
	if ids, _ := pn.foundIDs(); len(ids) != 0 {
		t.Errorf("a refused Attach left state for %v", ids)
	}
}

// A new subnet gives new attachments its addresses; an old attachment keeps its address
// and is still detached cleanly.
func TestSubnetChange(t *testing.T) {
	n := newTestNode(t)
	old := n.attach(t, "old-0")
	next := netip.MustParsePrefix("10.244.9.0/24")
	if err := n.pn.SetSubnet(next); err != nil {
		t.Fatal(err)
	}
	fresh := n.attach(t, "new-0")
	if !next.Contains(fresh.Addr) {
		t.Errorf("after the subnet changed, Attach gave %v, want an address of %v", fresh.Addr, next)
	}
	if got, _ := n.pn.Attachments(); len(got) != 2 || got[1] != old {
		t.Errorf("Attachments = %+v, want %+v kept", got, old)
	}
	if err := n.pn.Detach(context.Background(), "old-0"); err != nil {
		t.Fatal(err)
	}
	if f := n.ipamFiles(t); !slices.Equal(f, []string{fresh.Addr.String()}) {
		t.Errorf("IPAM files after detaching the old one: %v", f)
	}
	listenIn(t, fresh.Netns, netip.AddrPortFrom(fresh.Addr, 80).String(), "new")
	if got, err := dialFrom(n.ns, netip.AddrPortFrom(fresh.Addr, 80).String()); got != "new" {
		t.Errorf("node -> new instance: %q, %v", got, err)
	}
}

// A host port reaches the instance from the node's namespace (its gateway address and
// 127.0.0.1) and from another instance; Detach removes the rules.
func TestHostPortReachesInstance(t *testing.T) {
	n := newTestNode(t)
	a := n.attach(t, "front-0", PortMapping{HostPort: 18080, ContainerPort: 8080, Protocol: "TCP"})
	other := n.attach(t, "client-0")
	listenIn(t, a.Netns, ":8080", "front")
	gateway := testSubnet.Addr().Next()
	for _, c := range []struct{ from, addr string }{
		{n.ns, netip.AddrPortFrom(gateway, 18080).String()},
		{n.ns, "127.0.0.1:18080"},
		{other.Netns, netip.AddrPortFrom(gateway, 18080).String()},
	} {
		if got, err := dialFrom(c.from, c.addr); got != "front" {
			t.Errorf("%s from %s: %q, %v", c.addr, filepath.Base(c.from), got, err)
		}
	}
	rules := runIn(t, n.ns, "iptables-save", "-t", "nat")
	if !strings.Contains(rules, "--dport 18080") {
		t.Fatalf("no DNAT rule for 18080 in the node's namespace:\n%s", rules)
	}
	if err := n.pn.Detach(context.Background(), "front-0"); err != nil {
		t.Fatal(err)
	}
	if rules := runIn(t, n.ns, "iptables-save", "-t", "nat"); strings.Contains(rules, "18080") {
		t.Errorf("rules for 18080 left after Detach:\n%s", rules)
	}
	if got, err := dialFrom(n.ns, netip.AddrPortFrom(gateway, 18080).String()); err == nil {
		t.Errorf("host port still answers after Detach: %q", got)
	}
}

// An instance gets the address it asks for; one held by another instance or outside the
// subnet is refused without leaving anything; asking again for an attached ID with
// another address is refused too.
func TestAttachRequestedAddress(t *testing.T) {
	n := newTestNode(t)
	ctx := context.Background()
	want := netip.MustParseAddr("10.244.7.77")
	a, err := n.pn.Attach(ctx, "chosen-0", want, nil)
	if err != nil || a.Addr != want {
		t.Fatalf("Attach asking for %v = %+v, %v", want, a, err)
	}
	if again, err := n.pn.Attach(ctx, "chosen-0", want, nil); err != nil || again != a {
		t.Errorf("Attach again with the same address = %+v, %v", again, err)
	}
	if _, err := n.pn.Attach(ctx, "chosen-0", netip.MustParseAddr("10.244.7.78"), nil); err == nil {
		t.Error("Attach of an attached ID with another address succeeded")
	}
	for _, bad := range []string{"10.244.7.77", "10.244.8.5", "10.244.7.1"} {
		if got, err := n.pn.Attach(ctx, "other-0", netip.MustParseAddr(bad), nil); err == nil {
			t.Errorf("Attach asking for %s (taken, outside or the gateway) = %+v", bad, got)
		}
	}
	if ids, _ := n.pn.foundIDs(); !slices.Equal(ids, []string{"chosen-0"}) {
		t.Errorf("refused attachments left state: %v", ids)
	}
	listenIn(t, a.Netns, netip.AddrPortFrom(want, 80).String(), "chosen")
	if got, err := dialFrom(n.ns, netip.AddrPortFrom(want, 80).String()); got != "chosen" {
		t.Errorf("node -> %v: %q, %v", want, got, err)
	}
}

// SetMTU applies to later attachments.
func TestSetMTU(t *testing.T) {
	n := newTestNode(t)
	if err := n.pn.SetMTU(100); err == nil {
		t.Error("SetMTU(100) succeeded")
	}
	if err := n.pn.SetMTU(1400); err != nil {
		t.Fatal(err)
	}
	a := n.attach(t, "mtu-0")
	if out := runIn(t, a.Netns, "ip", "-o", "link", "show", "eth0"); !strings.Contains(out, "mtu 1400") {
		t.Errorf("eth0 after SetMTU(1400): %s", out)
	}
}

// Concurrent Attach calls for different IDs each get an address of their own.
func TestConcurrentAttach(t *testing.T) {
	n := newTestNode(t)
	const count = 8
	errs := make(chan error, count)
	addrs := make(chan netip.Addr, count)
	for i := range count {
		go func() {
			a, err := n.pn.Attach(context.Background(), fmt.Sprintf("par-%d", i), netip.Addr{}, nil)
			errs <- err
			addrs <- a.Addr
		}()
	}
	seen := map[netip.Addr]bool{}
	for range count {
		if err := <-errs; err != nil {
			t.Error(err)
		}
		seen[<-addrs] = true
	}
	if len(seen) != count {
		t.Errorf("%d concurrent attachments got %d distinct addresses", count, len(seen))
	}
}

var invalidIDs = []string{"", "-a", "a-", "Web-0", "a_b", "a.b", "../x", "a/b", "a b", strings.Repeat("a", 64), "é"}

func TestCheckID(t *testing.T) {
	for _, id := range []string{"a", "web-5d8f7c9b2a-0", "0", strings.Repeat("a", 63)} {
		if err := CheckID(id); err != nil {
			t.Errorf("CheckID(%q) = %v", id, err)
		}
	}
	for _, id := range invalidIDs {
		if err := CheckID(id); !errors.Is(err, ErrInvalidID) {
			t.Errorf("CheckID(%q) = %v, want ErrInvalidID", id, err)
		}
	}
}

func TestConfigDefaultsValidate(t *testing.T) {
	cfg := PodNetworkConfig{StateDir: "/var/lib/shoal/network"}.withDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if d := DefaultPodNetworkConfig(); cfg.Bridge != d.Bridge || cfg.NetworkName != d.NetworkName || !slices.Equal(cfg.PluginDirs, d.PluginDirs) {
		t.Errorf("withDefaults = %+v", cfg)
	}
	for name, bad := range map[string]PodNetworkConfig{
		"relative state dir":  {StateDir: "state"},
		"long bridge name":    {StateDir: "/s", Bridge: "a-very-long-bridge"},
		"bridge with a slash": {StateDir: "/s", Bridge: "br/0"},
		"bad network name":    {StateDir: "/s", NetworkName: "a b"},
		"tiny MTU":            {StateDir: "/s", MTU: 100},
		"relative node netns": {StateDir: "/s", NodeNetNS: "ns"},
		"relative plugin dir": {StateDir: "/s", PluginDirs: []string{"cni"}},
	} {
		if err := bad.withDefaults().Validate(); err == nil {
			t.Errorf("%s: validated", name)
		}
	}
}

func TestSetSubnetRefusesNonPrefixes(t *testing.T) {
	pn := &PodNetwork{}
	for _, p := range []string{"10.0.0.1/24", "10.0.0.0/31", "10.0.0.0/32", "fd00::/127"} {
		if err := pn.SetSubnet(netip.MustParsePrefix(p)); err == nil {
			t.Errorf("SetSubnet(%s) succeeded", p)
		}
	}
	if err := pn.SetSubnet(netip.Prefix{}); err == nil {
		t.Error("SetSubnet(zero) succeeded")
	}
	if pn.Subnet().IsValid() {
		t.Errorf("refused subnets set %v", pn.Subnet())
	}
	if err := pn.SetSubnet(netip.MustParsePrefix("10.1.2.0/30")); err != nil || pn.Subnet().String() != "10.1.2.0/30" {
		t.Errorf("SetSubnet(10.1.2.0/30) = %v, subnet %v", err, pn.Subnet())
	}
}

// The configuration list holds what the plugins must do: the gateway on the bridge, no
// masquerade, hairpin, IPAM state under StateDir, portmap only with ports.
func TestConfList(t *testing.T) {
	pn := &PodNetwork{cfg: PodNetworkConfig{StateDir: "/state"}.withDefaults()}
	for _, portmap := range []bool{false, true} {
		list, err := pn.confList(testSubnet, 1450, portmap)
		if err != nil {
			t.Fatal(err)
		}
		var types []string
		for _, p := range list.Plugins {
			types = append(types, p.Network.Type)
		}
		want := []string{"loopback", "bridge"}
		if portmap {
			want = append(want, "portmap")
		}
		if !slices.Equal(types, want) {
			t.Errorf("portmap=%v: plugins %v, want %v", portmap, types, want)
		}
		var br map[string]any
		if err := json.Unmarshal(list.Plugins[1].Bytes, &br); err != nil {
			t.Fatal(err)
		}
		ipam := br["ipam"].(map[string]any)
		if br["bridge"] != "shoal0" || br["isGateway"] != true || br["ipMasq"] != false || br["hairpinMode"] != true ||
			br["mtu"] != 1450.0 || ipam["dataDir"] != "/state/ipam" || ipam["type"] != "host-local" ||
			br["capabilities"].(map[string]any)["ips"] != true {
			t.Errorf("bridge configuration %s", list.Plugins[1].Bytes)
		}
		r := ipam["ranges"].([]any)[0].([]any)[0].(map[string]any)
		if r["subnet"] != "10.244.7.0/24" || r["gateway"] != "10.244.7.1" {
			t.Errorf("IPAM range %v", r)
		}
	}
}

func TestCNIPorts(t *testing.T) {
	got, err := cniPorts([]PortMapping{
		{HostPort: 80, ContainerPort: 8080},
		{HostPort: 53, ContainerPort: 5353, Protocol: "UDP", HostIP: netip.MustParseAddr("192.0.2.1")},
	})
	want := []cniPortMapping{{80, 8080, "tcp", ""}, {53, 5353, "udp", "192.0.2.1"}}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("cniPorts = %v, %v; want %v", got, err, want)
	}
	for _, bad := range []PortMapping{{HostPort: 0, ContainerPort: 80}, {HostPort: 80}, {HostPort: 1, ContainerPort: 1, Protocol: "icmp"}} {
		if _, err := cniPorts([]PortMapping{bad}); err == nil {
			t.Errorf("cniPorts(%+v) succeeded", bad)
		}
	}
}

// BenchmarkAttach measures one instance's network setup (Attach: a namespace, the CNI
// plugins, the record) and reports its median; Detach is not timed.
//
//	go test ./network -run '^$' -bench Attach -benchtime 30x -count 3
func BenchmarkAttach(b *testing.B) {
	skipUnlessRoot(b)
	ns := newNodeNS(b)
	pn, err := NewPodNetwork(PodNetworkConfig{StateDir: b.TempDir(), Bridge: testName(b), NodeNetNS: ns})
	if err != nil {
		b.Fatal(err)
	}
	pn.SetSubnet(netip.MustParsePrefix("10.244.0.0/16"))
	ctx := context.Background()
	b.Cleanup(func() { pn.Collect(ctx, func(string) bool { return false }) })
	var took []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := fmt.Sprintf("bench-%d", i)
		start := time.Now()
		if _, err := pn.Attach(ctx, id, netip.Addr{}, nil); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
		b.StopTimer()
		if err := pn.Detach(ctx, id); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "attach-ms")
}
