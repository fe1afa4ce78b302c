package network

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// routesLab builds the network namespaces of one test (nodes, their instances, a switch or a
// router between them) under a prefix of its own, and deletes them when the test ends, even
// when it fails. Nothing in it touches the machine's own namespace.
type routesLab struct {
	tb     testing.TB
	prefix string
}

// routesNode is a test node: a namespace with an uplink "eth0" and a bridge "shoal0" holding
// one instance, a namespace of its own with the subnet's .2 and a default route via .1.
type routesNode struct {
	name     string
	ns       string // path of the node's namespace
	h        *netlink.Handle
	addr     netip.Addr // on eth0
	subnet   netip.Prefix
	inst     string // path of the instance's namespace
	instAddr netip.Addr
}

// routesTestPort is the port the instances' servers listen on.
const routesTestPort = 8080

// newRoutesLab skips unless the test may create namespaces: it needs root, and -short skips it.
func newRoutesLab(tb testing.TB) *routesLab {
	skipUnlessRoot(tb)
	return &routesLab{tb: tb, prefix: "shoaltest-routes-" + randomHex(tb, 3)}
}

// netns creates the namespace PREFIX-role with loopback up and returns its path and a netlink
// handle in it; both go away when the test ends.
func (l *routesLab) netns(role string) (string, *netlink.Handle) {
	l.tb.Helper()
	name := l.prefix + "-" + role
	done := make(chan error, 1)
	go func() {
		// NewNamed moves the calling thread into the new namespace; this thread stays locked,
		// so the runtime discards it when the goroutine ends.
		defer close(done)
		runtime.LockOSThread()
		ns, err := netns.NewNamed(name)
		if err == nil {
			ns.Close()
		}
		done <- err
	}()
	if err := <-done; err != nil {
		l.tb.Fatalf("create netns %s: %v", name, err)
	}
	l.tb.Cleanup(func() {
		if err := netns.DeleteNamed(name); err != nil {
			l.tb.Errorf("delete netns %s: %v", name, err)
		}
	})
	path := "/var/run/netns/" + name
	h, err := openNetlink(path)
	if err != nil {
		l.tb.Fatal(err)
	}
	l.tb.Cleanup(h.Close)
	l.must(h.LinkSetUp(l.link(h, "lo")))
	return path, h
}

// must fails the test on err.
func (l *routesLab) must(err error) {
	l.tb.Helper()
	if err != nil {
		l.tb.Fatal(err)
	}
}

// link looks up a link by name.
func (l *routesLab) link(h *netlink.Handle, name string) netlink.Link {
	l.tb.Helper()
	link, err := h.LinkByName(name)
	l.must(err)
	return link
}

// veth creates a veth pair: name in h's namespace, peerName in the namespace at peerNS.
func (l *routesLab) veth(h *netlink.Handle, name, peerNS, peerName string) {
	l.tb.Helper()
	ns, err := netns.GetFromPath(peerNS)
	l.must(err)
	defer ns.Close()
	attrs := netlink.NewLinkAttrs()
	attrs.Name = name
	l.must(h.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: peerName, PeerNamespace: netlink.NsFd(ns)}))
}

// bridge creates a bridge, up.
func (l *routesLab) bridge(h *netlink.Handle, name string) {
	l.tb.Helper()
	attrs := netlink.NewLinkAttrs()
	attrs.Name = name
	br := &netlink.Bridge{LinkAttrs: attrs}
	l.must(h.LinkAdd(br))
	l.must(h.LinkSetUp(br))
}

// up gives a link an address (if any) and a master (if any) and sets it up.
func (l *routesLab) up(h *netlink.Handle, name, addr, master string) {
	l.tb.Helper()
	link := l.link(h, name)
	if addr != "" {
		l.must(h.AddrAdd(link, &netlink.Addr{IPNet: ipNetOf(netip.MustParsePrefix(addr))}))
	}
	if master != "" {
		l.must(h.LinkSetMaster(link, l.link(h, master)))
	}
	l.must(h.LinkSetUp(link))
}

// defaultRoute routes everything via gw.
func (l *routesLab) defaultRoute(h *netlink.Handle, gw netip.Addr) {
	l.tb.Helper()
	l.must(h.RouteAdd(&netlink.Route{Dst: ipNetOf(netip.MustParsePrefix("0.0.0.0/0")), Gw: gw.AsSlice()}))
}

// node creates node i (1, 2, …) with pod subnet 10.244.i.0/24 and its instance. Its eth0
// comes from the veth pair whose other end is swPort in the namespace at sw.
func (l *routesLab) node(i int, sw *netlink.Handle, swPort string, addr netip.Prefix) *routesNode {
	l.tb.Helper()
	n := &routesNode{
		name:     fmt.Sprintf("node%d", i),
		addr:     addr.Addr(),
		subnet:   netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 244, byte(i), 0}), 24),
		instAddr: netip.AddrFrom4([4]byte{10, 244, byte(i), 2}),
	}
	n.ns, n.h = l.netns(n.name)
	l.veth(sw, swPort, n.ns, "eth0")
	l.up(n.h, "eth0", addr.String(), "")

	// The bridge and the instance, as the CNI bridge plugin lays them out.
	l.bridge(n.h, "shoal0")
	l.up(n.h, "shoal0", netip.PrefixFrom(n.subnet.Addr().Next(), 24).String(), "")
	var ih *netlink.Handle
	n.inst, ih = l.netns(n.name + "-i")
	l.veth(n.h, "veth-i", n.inst, "eth0")
	l.up(n.h, "veth-i", "", "shoal0")
	l.up(ih, "eth0", netip.PrefixFrom(n.instAddr, 24).String(), "")
	l.defaultRoute(ih, n.subnet.Addr().Next())
	l.serve(n.inst, netip.AddrPortFrom(n.instAddr, routesTestPort))
	return n
}

// switched builds count nodes on one L2 segment: a bridge in a "switch" namespace, node i at
// 192.168.77.1i/24.
func (l *routesLab) switched(count int) []*routesNode {
	_, sw := l.netns("sw")
	l.bridge(sw, "sw0")
	var nodes []*routesNode
	for i := 1; i <= count; i++ {
		port := fmt.Sprintf("p%d", i)
		n := l.node(i, sw, port, netip.MustParsePrefix(fmt.Sprintf("192.168.77.%d/24", 10+i)))
		l.up(sw, port, "", "sw0")
		nodes = append(nodes, n)
	}
	return nodes
}

// routed builds count nodes each on an L3 subnet of its own, 192.168.(10i).0/24, joined by a
// "router" namespace: node i at .2, its default route via the router at .1. The router knows
// nothing of the pod subnets, so only an overlay carries pod traffic between the nodes.
func (l *routesLab) routed(count int) []*routesNode {
	router, rh := l.netns("rt")
	l.must(enableIPv4Forwarding(router))
	var nodes []*routesNode
	for i := 1; i <= count; i++ {
		port := fmt.Sprintf("p%d", i)
		n := l.node(i, rh, port, netip.MustParsePrefix(fmt.Sprintf("192.168.%d.2/24", 10*i)))
		l.up(rh, port, fmt.Sprintf("192.168.%d.1/24", 10*i), "")
		l.defaultRoute(n.h, netip.AddrFrom4([4]byte{192, 168, byte(10 * i), 1}))
		nodes = append(nodes, n)
	}
	return nodes
}

// lone builds a node namespace with nothing but an uplink "eth0" at 172.16.0.1/16 (one end
// of a veth pair whose other end, "eth0p", stays in the namespace too).
func (l *routesLab) lone(role string) (string, *netlink.Handle) {
	path, h := l.netns(role)
	attrs := netlink.NewLinkAttrs()
	attrs.Name = "eth0"
	l.must(h.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: "eth0p"}))
	l.up(h, "eth0p", "", "")
	l.up(h, "eth0", "172.16.0.1/16", "")
	return path, h
}

// serve answers each TCP connection to addr, in the namespace at ns, with the source address
// it came from, until the test ends.
func (l *routesLab) serve(ns string, addr netip.AddrPort) {
	l.tb.Helper()
	var ln net.Listener
	l.must(doInNetNS(ns, func() (err error) {
		ln, err = net.Listen("tcp", addr.String())
		return err
	}))
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			from := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
			fmt.Fprintf(c, "%s\n", from)
			c.Close()
		}
	})
	l.tb.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
}

// dial connects from the namespace at ns to the server at addr and returns the source address
// the server saw.
func routesDial(ns string, addr netip.AddrPort, timeout time.Duration) (string, error) {
	var seen string
	err := doInNetNS(ns, func() error {
		c, err := (&net.Dialer{Timeout: timeout}).Dial("tcp", addr.String())
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(timeout))
		line, err := bufio.NewReader(c).ReadString('\n')
		seen = strings.TrimSpace(line)
		return err
	})
	return seen, err
}

// mustReach checks that from's instance reaches to's, and that to's server sees from's
// instance address as the source: no NAT on the way.
func (l *routesLab) mustReach(from, to *routesNode) {
	l.tb.Helper()
	seen, err := routesDial(from.inst, netip.AddrPortFrom(to.instAddr, routesTestPort), 5*time.Second)
	if err != nil {
		l.tb.Fatalf("%s's instance cannot reach %s's at %v: %v", from.name, to.name, to.instAddr, err)
	}
	if seen != from.instAddr.String() {
		l.tb.Fatalf("%s's instance reached %s's, which saw source %s, want %v (no NAT)", from.name, to.name, seen, from.instAddr)
	}
}

// mustNotReach checks that from's instance cannot reach to's.
func (l *routesLab) mustNotReach(from, to *routesNode) {
	l.tb.Helper()
	if seen, err := routesDial(from.inst, netip.AddrPortFrom(to.instAddr, routesTestPort), time.Second); err == nil {
		l.tb.Fatalf("%s's instance still reaches %s's (seen as %s)", from.name, to.name, seen)
	}
}

// peer is n as a Peer.
func (n *routesNode) peer() Peer { return Peer{Node: n.name, Addr: n.addr, Subnet: n.subnet} }

// peersOf lists nodes as peers.
func peersOf(nodes ...*routesNode) []Peer {
	var peers []Peer
	for _, n := range nodes {
		peers = append(peers, n.peer())
	}
	return peers
}

// config is the RoutesConfig of node n.
func (n *routesNode) config(tb testing.TB, mode RouteMode) RoutesConfig {
	return RoutesConfig{
		Mode:        mode,
		LocalAddr:   n.addr,
		LocalSubnet: n.subnet,
		ClusterCIDR: netip.MustParsePrefix("10.244.0.0/16"),
		NetNS:       n.ns,
		Logger:      routesTestLogger(tb),
	}
}

// routes starts a Routes for node n that the test closes (Close of a closed one is a no-op).
func (n *routesNode) routes(tb testing.TB, mode RouteMode) *Routes {
	tb.Helper()
	r, err := NewRoutes(n.config(tb, mode))
	if err != nil {
		tb.Fatalf("NewRoutes on %s: %v", n.name, err)
	}
	tb.Cleanup(func() { r.Close() })
	return r
}

// ownedRoutes lists the routes with RouteProtocol in h's namespace as "dst via gw dev link".
func ownedRoutes(tb testing.TB, h *netlink.Handle) []string {
	tb.Helper()
	list, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: RouteProtocol}, netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, rt := range list {
		out = append(out, routeString(h, rt))
	}
	return out
}

// routeString formats a route as `ip route` would, in short.
func routeString(h *netlink.Handle, rt netlink.Route) string {
	name := fmt.Sprint(rt.LinkIndex)
	if link, err := h.LinkByIndex(rt.LinkIndex); err == nil {
		name = link.Attrs().Name
	}
	s := fmt.Sprintf("%v via %v dev %s", rt.Dst, rt.Gw, name)
	if rt.Flags&int(netlink.FLAG_ONLINK) != 0 {
		s += " onlink"
	}
	return s
}

// vxlanState lists what the VXLAN device named name holds in h's namespace: whether it exists,
// its permanent neighbour entries ("ip lladdr mac") and forwarding entries ("mac dst ip").
func vxlanState(tb testing.TB, h *netlink.Handle, name string) (exists bool, neighs, fdb []string) {
	tb.Helper()
	link, err := h.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return false, nil, nil
	}
	if err != nil {
		tb.Fatal(err)
	}
	ns, err := h.NeighList(link.Attrs().Index, netlink.FAMILY_V4)
	if err != nil {
		tb.Fatal(err)
	}
	for _, n := range ns {
		if n.State&netlink.NUD_PERMANENT != 0 {
			neighs = append(neighs, fmt.Sprintf("%v lladdr %v", n.IP, n.HardwareAddr))
		}
	}
	fs, err := h.NeighList(link.Attrs().Index, unix.AF_BRIDGE)
	if err != nil {
		tb.Fatal(err)
	}
	for _, n := range fs {
		if n.State&netlink.NUD_PERMANENT != 0 && n.IP != nil {
			fdb = append(fdb, fmt.Sprintf("%v dst %v", n.HardwareAddr, n.IP))
		}
	}
	return true, neighs, fdb
}

// routesTestLogger logs into the test's output (shown when it fails, or with -v).
func routesTestLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}
