package network

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// wantList fails the test unless got holds exactly want, in any order.
func wantList(tb testing.TB, what string, got []string, want ...string) {
	tb.Helper()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		tb.Fatalf("%s:\n got  %s\n want %s", what, strings.Join(got, "; "), strings.Join(want, "; "))
	}
}

// hostGWRoute is how ownedRoutes shows a host-gw route to n.
func hostGWRoute(n *routesNode) string {
	return fmt.Sprintf("%v via %v dev eth0", n.subnet, n.addr)
}

// vxlanRoute, vxlanNeigh and vxlanFDB are how ownedRoutes and vxlanState show n's entries.
func vxlanRoute(n *routesNode) string {
	return fmt.Sprintf("%v via %v dev shoal.vxlan onlink", n.subnet, n.subnet.Addr())
}

func vxlanNeigh(n *routesNode) string {
	return fmt.Sprintf("%v lladdr %v", n.subnet.Addr(), VTEPMAC(n.subnet))
}

func vxlanFDB(n *routesNode) string {
	return fmt.Sprintf("%v dst %v", VTEPMAC(n.subnet), n.addr)
}

// addForeignRoute adds a route that is not Shoal's ("proto static") in n's namespace.
func addForeignRoute(tb testing.TB, n *routesNode, dst string, gw netip.Addr) {
	tb.Helper()
	rt := &netlink.Route{Dst: ipNetOf(netip.MustParsePrefix(dst)), Gw: gw.AsSlice(), Protocol: unix.RTPROT_STATIC}
	if err := n.h.RouteAdd(rt); err != nil {
		tb.Fatal(err)
	}
}

// foreignRoutes lists the "proto static" routes in n's namespace.
func foreignRoutes(tb testing.TB, n *routesNode) []string {
	tb.Helper()
	list, err := n.h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: unix.RTPROT_STATIC}, netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, rt := range list {
		out = append(out, routeString(n.h, rt))
	}
	return out
}

func TestRoutesHostGW(t *testing.T) {
	lab := newRoutesLab(t)
	nodes := lab.switched(3)
	a, b, c := nodes[0], nodes[1], nodes[2]
	// Routes that are not Shoal's: one inside the cluster range, one to a subnet a peer will claim.
	addForeignRoute(t, a, "10.244.99.0/24", c.addr)
	addForeignRoute(t, a, "10.244.4.0/24", c.addr)
	foreign := []string{"10.244.99.0/24 via 192.168.77.13 dev eth0", "10.244.4.0/24 via 192.168.77.13 dev eth0"}

	// Routes made in subtests outlive them: their cleanup belongs to the whole test.
	top := t
	ra := a.routes(t, RouteModeHostGW)
	for _, n := range []*routesNode{b, c} {
		r := n.routes(t, RouteModeHostGW)
		if err := r.Sync(peersOf(slices.DeleteFunc(slices.Clone(nodes), func(o *routesNode) bool { return o == n })...)); err != nil {
			t.Fatalf("Sync on %s: %v", n.name, err)
		}
	}
	if got := ra.MTU(); got != 1500 {
		t.Fatalf("MTU = %d, want the uplink's 1500", got)
	}
	if err := ra.Sync(peersOf(b, c)); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	wantList(t, "a's routes", ownedRoutes(t, a.h), hostGWRoute(b), hostGWRoute(c))
	lab.mustReach(a, b)
	lab.mustReach(a, c)
	lab.mustReach(c, a)

	t.Run("a peer that leaves loses its route, and gets it back when it returns", func(t *testing.T) {
		if err := ra.Sync(peersOf(c)); err != nil {
			t.Fatal(err)
		}
		wantList(t, "a's routes without b", ownedRoutes(t, a.h), hostGWRoute(c))
		lab.mustNotReach(a, b)
		lab.mustReach(a, c)
		if err := ra.Sync(peersOf(b, c)); err != nil {
			t.Fatal(err)
		}
		wantList(t, "a's routes with b back", ownedRoutes(t, a.h), hostGWRoute(b), hostGWRoute(c))
		lab.mustReach(a, b)
	})

	t.Run("a peer whose subnet changes has its route replaced", func(t *testing.T) {
		moved := b.peer()
		moved.Subnet = netip.MustParsePrefix("10.244.12.0/24")
		if err := ra.Sync([]Peer{moved, c.peer()}); err != nil {
			t.Fatal(err)
		}
		wantList(t, "a's routes after b moved", ownedRoutes(t, a.h), "10.244.12.0/24 via 192.168.77.12 dev eth0", hostGWRoute(c))
		if err := ra.Sync(peersOf(b, c)); err != nil {
			t.Fatal(err)
		}
		lab.mustReach(a, b)
	})

	t.Run("a peer whose address changes has its route replaced", func(t *testing.T) {
		moved := *b
		moved.addr = netip.MustParseAddr("192.168.77.99")
		if err := ra.Sync(peersOf(&moved, c)); err != nil {
			t.Fatal(err)
		}
		wantList(t, "a's routes after b's address changed", ownedRoutes(t, a.h), hostGWRoute(&moved), hostGWRoute(c))
		lab.mustNotReach(a, b)

		// To an address off this segment: refused, and the route to the old address goes too.
		moved.addr = netip.MustParseAddr("192.168.78.12")
		if err := ra.Sync(peersOf(&moved, c)); !errors.Is(err, ErrNotOnLink) {
			t.Fatalf("Sync = %v, want ErrNotOnLink", err)
		}
		wantList(t, "a's routes after b moved off the segment", ownedRoutes(t, a.h), hostGWRoute(c))

		if err := ra.Sync(peersOf(b, c)); err != nil {
			t.Fatal(err)
		}
		lab.mustReach(a, b)
	})

	t.Run("unsafe claims are refused, the rest programmed", func(t *testing.T) {
		hijack := Peer{Node: "evil", Addr: c.addr, Subnet: netip.MustParsePrefix("192.168.77.0/24")}
		inside := Peer{Node: "inside", Addr: c.addr, Subnet: netip.MustParsePrefix("10.244.2.128/25")}
		err := ra.Sync(append(peersOf(b, c), hijack, inside))
		if !errors.Is(err, ErrPeerRefused) {
			t.Fatalf("Sync = %v, want ErrPeerRefused", err)
		}
		// b's claim overlaps "inside", so neither is trusted with traffic.
		wantList(t, "a's routes", ownedRoutes(t, a.h), hostGWRoute(c))
		if err := ra.Sync(peersOf(b, c)); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a subnet with a route that is not Shoal's is left alone", func(t *testing.T) {
		d := Peer{Node: "node4", Addr: netip.MustParseAddr("192.168.77.14"), Subnet: netip.MustParsePrefix("10.244.4.0/24")}
		err := ra.Sync(append(peersOf(b, c), d))
		if !errors.Is(err, ErrRouteTaken) {
			t.Fatalf("Sync = %v, want ErrRouteTaken", err)
		}
		wantList(t, "a's foreign routes", foreignRoutes(t, a), foreign...)
		wantList(t, "a's routes", ownedRoutes(t, a.h), hostGWRoute(b), hostGWRoute(c))
	})

	t.Run("a restarted daemon keeps traffic flowing and cleans a stale peer", func(t *testing.T) {
		if err := ra.Sync(peersOf(b, c)); err != nil {
			t.Fatal(err)
		}
		if err := ra.Detach(); err != nil {
			t.Fatal(err)
		}
		if err := ra.Sync(peersOf(b)); !errors.Is(err, ErrRoutesClosed) {
			t.Fatalf("Sync after Detach = %v, want ErrRoutesClosed", err)
		}
		ra = a.routes(top, RouteModeHostGW)
		wantList(t, "a's routes after the restart", ownedRoutes(t, a.h), hostGWRoute(b), hostGWRoute(c))
		lab.mustReach(a, b)
		if err := ra.Sync(peersOf(b)); err != nil {
			t.Fatal(err)
		}
		wantList(t, "a's routes without the stale c", ownedRoutes(t, a.h), hostGWRoute(b))
		lab.mustReach(a, b)
		lab.mustNotReach(a, c)
	})

	t.Run("Rescan repairs a route removed behind Routes' back", func(t *testing.T) {
		if err := a.h.RouteDel(&netlink.Route{Dst: ipNetOf(b.subnet), Protocol: RouteProtocol}); err != nil {
			t.Fatal(err)
		}
		lab.mustNotReach(a, b)
		if err := ra.Rescan(); err != nil {
			t.Fatal(err)
		}
		if err := ra.Sync(peersOf(b)); err != nil {
			t.Fatal(err)
		}
		lab.mustReach(a, b)
	})

	t.Run("Close removes every route of Shoal's and no other", func(t *testing.T) {
		if err := ra.Close(); err != nil {
			t.Fatal(err)
		}
		wantList(t, "a's routes after Close", ownedRoutes(t, a.h))
		wantList(t, "a's foreign routes after Close", foreignRoutes(t, a), foreign...)
		lab.mustNotReach(a, b)
	})
}

func TestRoutesHostGWRefusesPeersBehindARouter(t *testing.T) {
	lab := newRoutesLab(t)
	nodes := lab.routed(2)
	a, b := nodes[0], nodes[1]
	ra := a.routes(t, RouteModeHostGW)
	err := ra.Sync(peersOf(b))
	if !errors.Is(err, ErrNotOnLink) || !strings.Contains(err.Error(), "via the gateway 192.168.10.1") {
		t.Fatalf("Sync = %v, want ErrNotOnLink naming the gateway", err)
	}
	wantList(t, "a's routes", ownedRoutes(t, a.h))
}

func TestRoutesVXLAN(t *testing.T) {
	lab := newRoutesLab(t)
	nodes := lab.routed(3)
	a, b, c := nodes[0], nodes[1], nodes[2]
	addForeignRoute(t, a, "10.244.99.0/24", netip.MustParseAddr("192.168.10.1"))

	top := t
	ra := a.routes(t, RouteModeVXLAN)
	for _, n := range []*routesNode{b, c} {
		r := n.routes(t, RouteModeVXLAN)
		if err := r.Sync(peersOf(slices.DeleteFunc(slices.Clone(nodes), func(o *routesNode) bool { return o == n })...)); err != nil {
			t.Fatalf("Sync on %s: %v", n.name, err)
		}
	}
	if err := ra.Sync(peersOf(b, c)); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	checkDevice(t, a)
	if got := ra.MTU(); got != 1450 {
		t.Fatalf("MTU = %d, want 1500 - 50", got)
	}
	wantEntries := func(what string, peers ...*routesNode) {
		t.Helper()
		var routes, neighs, fdb []string
		for _, p := range peers {
			routes, neighs, fdb = append(routes, vxlanRoute(p)), append(neighs, vxlanNeigh(p)), append(fdb, vxlanFDB(p))
		}
		exists, haveNeighs, haveFDB := vxlanState(t, a.h, "shoal.vxlan")
		if !exists {
			t.Fatalf("%s: no VXLAN device", what)
		}
		wantList(t, what+": routes", ownedRoutes(t, a.h), routes...)
		wantList(t, what+": neighbours", haveNeighs, neighs...)
		wantList(t, what+": forwarding entries", haveFDB, fdb...)
	}
	wantEntries("a's entries", b, c)
	lab.mustReach(a, b)
	lab.mustReach(a, c)
	lab.mustReach(c, b)

	t.Run("a peer that leaves loses its entries, and gets them back when it returns", func(t *testing.T) {
		if err := ra.Sync(peersOf(c)); err != nil {
			t.Fatal(err)
		}
		wantEntries("a's entries without b", c)
		lab.mustNotReach(a, b)
		lab.mustReach(a, c)
		if err := ra.Sync(peersOf(b, c)); err != nil {
			t.Fatal(err)
		}
		wantEntries("a's entries with b back", b, c)
		lab.mustReach(a, b)
	})

	t.Run("a peer whose subnet changes has its entries replaced", func(t *testing.T) {
		moved := *b
		moved.subnet = netip.MustParsePrefix("10.244.12.0/24")
		if err := ra.Sync(peersOf(&moved, c)); err != nil {
			t.Fatal(err)
		}
		wantEntries("a's entries after b moved", &moved, c)
		if err := ra.Sync(peersOf(b, c)); err != nil {
			t.Fatal(err)
		}
		wantEntries("a's entries after b moved back", b, c)
		lab.mustReach(a, b)
	})

	t.Run("a peer whose address changes has its forwarding entry replaced", func(t *testing.T) {
		moved := *b
		moved.addr = netip.MustParseAddr("192.168.20.99")
		if err := ra.Sync(peersOf(&moved, c)); err != nil {
			t.Fatal(err)
		}
		wantEntries("a's entries after b's address changed", &moved, c)
		lab.mustNotReach(a, b)
		if err := ra.Sync(peersOf(b, c)); err != nil {
			t.Fatal(err)
		}
		lab.mustReach(a, b)
	})

	t.Run("a restarted daemon keeps traffic flowing and cleans a stale peer", func(t *testing.T) {
		if err := ra.Detach(); err != nil {
			t.Fatal(err)
		}
		ra = a.routes(top, RouteModeVXLAN)
		wantEntries("a's entries after the restart", b, c)
		lab.mustReach(a, b)
		if err := ra.Sync(peersOf(b)); err != nil {
			t.Fatal(err)
		}
		wantEntries("a's entries without the stale c", b)
		lab.mustReach(a, b)
		lab.mustNotReach(a, c)
	})

	t.Run("a restart with another tunnel setting recreates the device", func(t *testing.T) {
		if err := ra.Detach(); err != nil {
			t.Fatal(err)
		}
		cfg := a.config(t, RouteModeVXLAN)
		cfg.VXLAN.Port = 4789
		r, err := NewRoutes(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		link, err := a.h.LinkByName("shoal.vxlan")
		if err != nil {
			t.Fatal(err)
		}
		if port := link.(*netlink.Vxlan).Port; port != 4789 {
			t.Fatalf("port = %d, want 4789", port)
		}
		// The old device took its entries along; only routes of ours elsewhere could be left.
		wantEntries("a's entries on the new device")
		r.Detach()
		ra = a.routes(top, RouteModeVXLAN)
		if err := ra.Sync(peersOf(b, c)); err != nil {
			t.Fatal(err)
		}
		checkDevice(t, a)
		lab.mustReach(a, b)
	})

	t.Run("a restart in host-gw mode removes the VXLAN device and its routes", func(t *testing.T) {
		if err := ra.Detach(); err != nil {
			t.Fatal(err)
		}
		rh := a.routes(top, RouteModeHostGW)
		if exists, _, _ := vxlanState(t, a.h, "shoal.vxlan"); exists {
			t.Fatal("the VXLAN device survived a restart in host-gw mode")
		}
		wantList(t, "a's routes", ownedRoutes(t, a.h))
		rh.Detach()
		ra = a.routes(top, RouteModeVXLAN)
		if err := ra.Sync(peersOf(b, c)); err != nil {
			t.Fatal(err)
		}
		lab.mustReach(a, b)
	})

	t.Run("Close leaves nothing of Shoal's and every other route", func(t *testing.T) {
		if err := ra.Close(); err != nil {
			t.Fatal(err)
		}
		if exists, _, _ := vxlanState(t, a.h, "shoal.vxlan"); exists {
			t.Fatal("the VXLAN device survived Close")
		}
		wantList(t, "a's routes after Close", ownedRoutes(t, a.h))
		wantList(t, "a's foreign routes after Close", foreignRoutes(t, a), "10.244.99.0/24 via 192.168.10.1 dev eth0")
		lab.mustNotReach(a, b)
	})
}

func TestRoutesVXLANTakesOverAChangedDevice(t *testing.T) {
	lab := newRoutesLab(t)
	path, h := lab.lone("vx")
	cfg := RoutesConfig{
		Mode:        RouteModeVXLAN,
		LocalAddr:   netip.MustParseAddr("172.16.0.1"),
		LocalSubnet: netip.MustParsePrefix("10.244.1.0/24"),
		ClusterCIDR: netip.MustParsePrefix("10.244.0.0/16"),
		NetNS:       path,
		Logger:      routesTestLogger(t),
	}
	r, err := NewRoutes(cfg)
	lab.must(err)
	t.Cleanup(func() { r.Close() })
	lab.must(r.Rescan())
	lab.must(r.Rescan())
	if got := r.MTU(); got != 1450 {
		t.Fatalf("MTU after two rescans = %d, want 1450", got)
	}
	before, err := h.LinkByName("shoal.vxlan")
	lab.must(err)
	lab.must(r.Detach())

	// The node comes back with another subnet and MTU: the device changes in place.
	cfg.LocalSubnet, cfg.VXLAN.MTU = netip.MustParsePrefix("10.244.7.0/24"), 1400
	r, err = NewRoutes(cfg)
	lab.must(err)
	t.Cleanup(func() { r.Close() })
	after, err := h.LinkByName("shoal.vxlan")
	lab.must(err)
	if after.Attrs().Index != before.Attrs().Index {
		t.Fatalf("device recreated (index %d, was %d); MAC and MTU change in place", after.Attrs().Index, before.Attrs().Index)
	}
	if after.Attrs().MTU != 1400 || r.MTU() != 1400 || after.Attrs().HardwareAddr.String() != VTEPMAC(cfg.LocalSubnet).String() {
		t.Fatalf("device MTU %d (Routes says %d), MAC %v; want 1400 and %v", after.Attrs().MTU, r.MTU(),
			after.Attrs().HardwareAddr, VTEPMAC(cfg.LocalSubnet))
	}
	addrs, err := h.AddrList(after, netlink.FAMILY_V4)
	lab.must(err)
	var got []string
	for _, a := range addrs {
		got = append(got, a.IPNet.String())
	}
	wantList(t, "VTEP addresses", got, "10.244.7.0/32")

	// A link of that name that is not VXLAN is not ours: NewRoutes refuses to run over it.
	lab.must(r.Close())
	attrs := netlink.NewLinkAttrs()
	attrs.Name = "shoal.vxlan"
	lab.must(h.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}))
	if _, err := NewRoutes(cfg); !errors.Is(err, ErrLinkTaken) {
		t.Fatalf("NewRoutes over a bridge named shoal.vxlan = %v, want ErrLinkTaken", err)
	}
	if _, err := h.LinkByName("shoal.vxlan"); err != nil {
		t.Fatalf("the bridge is gone: %v", err)
	}
}

// checkDevice checks node n's VXLAN device against its config.
func checkDevice(tb testing.TB, n *routesNode) {
	tb.Helper()
	link, err := n.h.LinkByName("shoal.vxlan")
	if err != nil {
		tb.Fatal(err)
	}
	vx, ok := link.(*netlink.Vxlan)
	if !ok {
		tb.Fatalf("shoal.vxlan is a %s", link.Type())
	}
	if vx.VxlanId != 1 || vx.Port != 8472 || vx.Learning || !vx.SrcAddr.Equal(n.addr.AsSlice()) ||
		vx.HardwareAddr.String() != VTEPMAC(n.subnet).String() || vx.Attrs().OperState == netlink.OperDown {
		tb.Fatalf("device: VNI %d port %d learning %v local %v MAC %v state %v", vx.VxlanId, vx.Port, vx.Learning,
			vx.SrcAddr, vx.HardwareAddr, vx.Attrs().OperState)
	}
	addrs, err := n.h.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		tb.Fatal(err)
	}
	var got []string
	for _, a := range addrs {
		got = append(got, a.IPNet.String())
	}
	wantList(tb, "VTEP address", got, netip.PrefixFrom(n.subnet.Addr(), 32).String())
}

func TestRoutesForwardingStaysInTheNodeNamespace(t *testing.T) {
	const knob = "/proc/sys/net/ipv4/ip_forward"
	lab := newRoutesLab(t)
	path, _ := lab.netns("fwd")
	inNS := func(fn func() error) { lab.must(doInNetNS(path, fn)) }
	read := func() (v string) {
		inNS(func() (err error) { v, err = readKnob(knob); return err })
		return v
	}
	before, err := readKnob(knob)
	lab.must(err)
	// A new namespace copies the machine's setting; start from off to see it turn on.
	inNS(func() error { return os.WriteFile(knob, []byte("0"), 0o644) })
	if got := read(); got != "0" {
		t.Fatalf("ip_forward in the namespace = %s after writing 0", got)
	}
	lab.must(enableIPv4Forwarding(path))
	if got := read(); got != "1" {
		t.Fatalf("ip_forward in the namespace = %s, want 1", got)
	}
	after, err := readKnob(knob)
	lab.must(err)
	if after != before {
		t.Fatalf("the machine's own ip_forward changed from %s to %s", before, after)
	}
}

// readKnob reads a sysctl file of the calling thread's namespace.
func readKnob(path string) (string, error) {
	b, err := os.ReadFile(path)
	return strings.TrimSpace(string(b)), err
}
