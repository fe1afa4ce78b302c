package network

import (
	"errors"
	"maps"
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

var testVIP = netip.MustParseAddr("10.96.0.10")

// webService is a Service with one TCP port 80 → 8080 and one UDP port 53 → 5353.
func (tb *proxyTestbed) webService(nodePort uint16, names ...string) Service {
	return Service{Namespace: "default", Name: "web", VIP: testVIP, Ports: []ServicePort{
		{Name: "http", Protocol: ProtocolTCP, Port: 80, NodePort: nodePort, Endpoints: tb.endpoints(ProtocolTCP, names...)},
		{Name: "dns", Protocol: ProtocolUDP, Port: 53, Endpoints: tb.endpoints(ProtocolUDP, names...)},
	}}
}

func checkNoLeaks(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

func mustSync(t *testing.T, p *Proxy, services ...Service) {
	t.Helper()
	if err := p.Sync(services); err != nil {
		t.Fatalf("Sync: %v", err)
	}
}

// wantOnly fails unless seen holds exactly the names want (each at least once).
func wantOnly(t *testing.T, what string, seen map[string]int, want ...string) {
	t.Helper()
	got := slices.Sorted(maps.Keys(seen))
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("%s reached %v (%v), want each of %v", what, got, seen, want)
	}
}

func TestProxyVIPSpreadsOverEndpoints(t *testing.T) {
	skipUnlessProxyKernel(t)
	checkNoLeaks(t)
	tb := newProxyTestbed(t, "a", "b", "c")
	p := tb.proxy(t)
	mustSync(t, p, tb.webService(0, "a", "b", "c"))

	// 60 connections miss one of three endpoints with probability 3·(2/3)^60 < 1e-10.
	vip := netip.AddrPortFrom(testVIP, 80)
	wantOnly(t, "TCP VIP:80 from an instance", askMany(t, tb.pods["a"], ProtocolTCP, vip, 60), "a", "b", "c")
	wantOnly(t, "UDP VIP:53 from an instance", askMany(t, tb.pods["b"], ProtocolUDP, netip.AddrPortFrom(testVIP, 53), 60), "a", "b", "c")
	// The node's own processes go through the output hook.
	wantOnly(t, "TCP VIP:80 from the node", askMany(t, tb.node, ProtocolTCP, vip, 60), "a", "b", "c")

	// An instance on another node's subnet would keep its address; one on this node's
	// subnet is masqueraded to the bridge (so replies come back through the node).
	r, err := ask(tb.pods["a"], ProtocolTCP, vip)
	if err != nil {
		t.Fatal(err)
	}
	if r.remote.Addr() != testBridgeAddr {
		t.Errorf("endpoint saw the client at %v, want the bridge address %v", r.remote, testBridgeAddr)
	}
}

func TestProxyEndpointRemovedGetsNoNewConnections(t *testing.T) {
	skipUnlessProxyKernel(t)
	checkNoLeaks(t)
	tb := newProxyTestbed(t, "a", "b", "c")
	p := tb.proxy(t)
	mustSync(t, p, tb.webService(0, "a", "b", "c"))
	vip := netip.AddrPortFrom(testVIP, 80)
	wantOnly(t, "before", askMany(t, tb.pods["a"], ProtocolTCP, vip, 60), "a", "b", "c")

	mustSync(t, p, tb.webService(0, "a", "c"))
	wantOnly(t, "after removing b", askMany(t, tb.pods["a"], ProtocolTCP, vip, 60), "a", "c")
	wantOnly(t, "UDP after removing b", askMany(t, tb.pods["a"], ProtocolUDP, netip.AddrPortFrom(testVIP, 53), 60), "a", "c")

	mustSync(t, p, tb.webService(0, "b"))
	wantOnly(t, "after replacing all by b", askMany(t, tb.pods["c"], ProtocolTCP, vip, 20), "b")
	if eps := listElements(t, tb.node, proxyServiceEndpointsMap); len(eps) != 2 {
		t.Errorf("%s after the sync holds %q, want b's TCP and UDP endpoints", proxyServiceEndpointsMap, eps)
	}
}

func TestProxyNoEndpointsRefusesAtOnce(t *testing.T) {
	skipUnlessProxyKernel(t)
	checkNoLeaks(t)
	tb := newProxyTestbed(t, "a")
	p := tb.proxy(t)
	mustSync(t, p, tb.webService(30080))

	for _, c := range []struct {
		what  string
		from  *testNetns
		proto Protocol
		to    netip.AddrPort
	}{
		{"TCP VIP from an instance", tb.pods["a"], ProtocolTCP, netip.AddrPortFrom(testVIP, 80)},
		{"TCP VIP from the node", tb.node, ProtocolTCP, netip.AddrPortFrom(testVIP, 80)},
		{"UDP VIP from an instance", tb.pods["a"], ProtocolUDP, netip.AddrPortFrom(testVIP, 53)},
		{"TCP NodePort from outside", tb.client, ProtocolTCP, netip.AddrPortFrom(testNodeAddr, 30080)},
		{"TCP NodePort from the node", tb.node, ProtocolTCP, netip.AddrPortFrom(testNodeAddr, 30080)},
	} {
		start := time.Now()
		_, err := ask(c.from, c.proto, c.to)
		took := time.Since(start)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("%s: err %v, want connection refused", c.what, err)
		}
		if took > 500*time.Millisecond {
			t.Errorf("%s: refused after %v, want at once", c.what, took)
		}
	}

	// Endpoints appear: the same Service now answers.
	mustSync(t, p, tb.webService(30080, "a"))
	wantOnly(t, "after an endpoint appears", askMany(t, tb.pods["a"], ProtocolTCP, netip.AddrPortFrom(testVIP, 80), 3), "a")
}

func TestProxyNodePort(t *testing.T) {
	skipUnlessProxyKernel(t)
	checkNoLeaks(t)
	tb := newProxyTestbed(t, "a", "b")
	p := tb.proxy(t)
	mustSync(t, p, tb.webService(30080, "a", "b"))

	nodePort := netip.AddrPortFrom(testNodeAddr, 30080)
	wantOnly(t, "NodePort from outside the node", askMany(t, tb.client, ProtocolTCP, nodePort, 40), "a", "b")
	r, err := ask(tb.client, ProtocolTCP, nodePort)
	if err != nil {
		t.Fatal(err)
	}
	if r.remote.Addr() != testBridgeAddr {
		t.Errorf("endpoint saw the outside client at %v, want it masqueraded to %v", r.remote, testBridgeAddr)
	}
	wantOnly(t, "NodePort from the node", askMany(t, tb.node, ProtocolTCP, nodePort, 40), "a", "b")
	// Any local address of the node, not only the one facing the client.
	wantOnly(t, "NodePort on the bridge address from an instance",
		askMany(t, tb.pods["a"], ProtocolTCP, netip.AddrPortFrom(testBridgeAddr, 30080), 40), "a", "b")
	// The port is not open on addresses that are not the node's.
	if _, err := ask(tb.node, ProtocolTCP, netip.AddrPortFrom(testVIP, 30080)); err == nil {
		t.Errorf("VIP:nodePort answered; want nothing there")
	}
}

func TestProxyHairpin(t *testing.T) {
	skipUnlessProxyKernel(t)
	checkNoLeaks(t)
	tb := newProxyTestbed(t, "a", "b")
	p := tb.proxy(t)
	// a calls its own Service, whose only endpoint is a.
	mustSync(t, p, tb.webService(0, "a"))
	for _, proto := range []Protocol{ProtocolTCP, ProtocolUDP} {
		port := uint16(80)
		if proto == ProtocolUDP {
			port = 53
		}
		r, err := ask(tb.pods["a"], proto, netip.AddrPortFrom(testVIP, port))
		if err != nil {
			t.Fatalf("%s hairpin: %v", proto, err)
		}
		if r.name != "a" || r.remote.Addr() != testBridgeAddr {
			t.Errorf("%s hairpin: reached %s, seen from %v; want a, from %v", proto, r.name, r.remote, testBridgeAddr)
		}
	}
}

func TestProxyPodEgressMasquerade(t *testing.T) {
	skipUnlessProxyKernel(t)
	checkNoLeaks(t)
	tb := newProxyTestbed(t, "a")
	tb.servers.serveTCP(t, tb.client, testClientAddr.String()+":9000", "outside")
	outside := netip.AddrPortFrom(testClientAddr, 9000)
	// Without the proxy the outside has no route back to the pod range.
	if _, err := ask(tb.pods["a"], ProtocolTCP, outside); err == nil {
		t.Fatal("outside reached without masquerade; the test proves nothing")
	}
	p := tb.proxy(t)
	mustSync(t, p)
	r, err := ask(tb.pods["a"], ProtocolTCP, outside)
	if err != nil {
		t.Fatalf("egress: %v", err)
	}
	if r.remote.Addr() != testNodeAddr {
		t.Errorf("outside saw the instance at %v, want the node's address %v", r.remote, testNodeAddr)
	}
	// Between instances, no NAT: b would see a's own address (checked on the node itself).
	if r, err := ask(tb.node, ProtocolTCP, netip.AddrPortFrom(tb.podAddr["a"], testTCPPort)); err != nil || r.remote.Addr() == testNodeAddr {
		t.Errorf("node to instance: %v, %v", r, err)
	}
}

func TestProxyRestartTakesOverTable(t *testing.T) {
	skipUnlessProxyKernel(t)
	checkNoLeaks(t)
	tb := newProxyTestbed(t, "a", "b")
	cfg := ProxyConfig{ClusterCIDR: testClusterCIDR, PodSubnet: testPodSubnet, NetNS: tb.node.path}
	first, err := NewProxy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, first, tb.webService(30080, "a", "b"))
	if err := first.Detach(); err != nil { // the daemon dies; its rules stay
		t.Fatal(err)
	}
	vip := netip.AddrPortFrom(testVIP, 80)
	wantOnly(t, "while no daemon runs", askMany(t, tb.pods["a"], ProtocolTCP, vip, 40), "a", "b")

	second, err := NewProxy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	wantOnly(t, "after the new daemon starts, before its first sync", askMany(t, tb.pods["a"], ProtocolTCP, vip, 40), "a", "b")
	mustSync(t, second, tb.webService(30080, "b"))
	wantOnly(t, "after the new daemon's first sync", askMany(t, tb.pods["a"], ProtocolTCP, vip, 20), "b")
	if tables := listTables(t, tb.node); !slices.Equal(tables, []string{"table ip shoal"}) {
		t.Errorf("tables after restart: %q, want exactly one", tables)
	}
	mustSync(t, second, tb.webService(30080, "a")) // and incremental syncs go on from there
	wantOnly(t, "after a second sync", askMany(t, tb.client, ProtocolTCP, netip.AddrPortFrom(testNodeAddr, 30080), 10), "a")

	if err := second.Close(); err != nil {
		t.Fatal(err)
	}
	if rules := strings.TrimSpace(tb.node.run(t, "nft", "list", "ruleset")); rules != "" {
		t.Errorf("after Close the namespace still holds:\n%s", rules)
	}
	if _, err := ask(tb.pods["a"], ProtocolTCP, vip); err == nil {
		t.Error("VIP still answers after Close")
	}
	if err := second.Sync(nil); !errors.Is(err, ErrProxyClosed) {
		t.Errorf("Sync after Close: %v, want ErrProxyClosed", err)
	}
}

// proxyFixedChains are the chains every table has.
var proxyFixedChains = []string{"nat-prerouting", "nat-output", "nat-postrouting", "filter-input",
	"filter-forward", "filter-output", proxyServicesChain, proxyEndpointsCheckChain, proxyRejectChain,
	proxyMarkMasqChain, proxyMasqueradingChain}

// listElements lists the elements of one of the shoal table's maps or sets with the nft
// binary (tests only).
func listElements(t *testing.T, ns *testNetns, set string) []string {
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

func listTables(t *testing.T, ns *testNetns) []string {
	t.Helper()
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs the nft binary to inspect the table")
	}
	return strings.Split(strings.TrimSpace(ns.run(t, "nft", "list", "tables")), "\n")
}
