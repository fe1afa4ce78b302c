package network

import (
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"slices"
)

// vtepMAC is a VXLAN tunnel endpoint's MAC address, as a map key.
type vtepMAC [6]byte

// String formats the MAC as net.HardwareAddr does.
func (m vtepMAC) String() string { return net.HardwareAddr(m[:]).String() }

// VTEPMAC is the MAC address of the VXLAN tunnel endpoint of the node that owns subnet, an
// IPv4 pod subnet: 0e:LEN:A:B:C:D for A.B.C.D/LEN. Every node derives any peer's MAC from the
// peer's subnet, so no MAC travels in gossip. It is locally administered (bit 1 of the first
// byte set) and unicast (bit 0 clear), and distinct subnets give distinct MACs. It is nil for
// a prefix that is not IPv4.
func VTEPMAC(subnet netip.Prefix) net.HardwareAddr {
	m, ok := vtepMACOf(subnet)
	if !ok {
		return nil
	}
	return net.HardwareAddr(m[:])
}

// vtepMACOf is VTEPMAC as a map key.
func vtepMACOf(subnet netip.Prefix) (vtepMAC, bool) {
	subnet = subnet.Masked()
	if !subnet.IsValid() || !subnet.Addr().Is4() {
		return vtepMAC{}, false
	}
	a := subnet.Addr().As4()
	return vtepMAC{0x0e, byte(subnet.Bits()), a[0], a[1], a[2], a[3]}, true
}

// peerRoute is the route to one peer's pod subnet.
type peerRoute struct {
	node string     // the peer it serves; empty for one a previous run left
	gw   netip.Addr // next hop: the peer's address (host-gw) or its VTEP address (vxlan)
	link int        // outgoing link; 0 in a wanted host-gw route (found when programmed)
}

// satisfies says whether the programmed route have already does what want asks.
func (want peerRoute) satisfies(have peerRoute) bool {
	return want.gw == have.gw && (want.link == 0 || want.link == have.link)
}

// routeEntries is a set of kernel entries of ours, wanted or programmed.
type routeEntries struct {
	routes map[netip.Prefix]peerRoute // by peer subnet
	neighs map[netip.Addr]vtepMAC     // vxlan: peer VTEP address → VTEP MAC
	fdb    map[vtepMAC]netip.Addr     // vxlan: VTEP MAC → peer node address
}

// newRouteEntries returns empty entries with room for n peers (neighbour and forwarding
// entries only in vxlan mode).
func newRouteEntries(mode RouteMode, n int) routeEntries {
	e := routeEntries{routes: make(map[netip.Prefix]peerRoute, n)}
	if mode == RouteModeVXLAN {
		e.neighs, e.fdb = make(map[netip.Addr]vtepMAC, n), make(map[vtepMAC]netip.Addr, n)
	}
	return e
}

// wantEntries fills into (emptied first; its maps are reused, so that a Sync over many peers
// allocates little) with what the kernel should hold for peers (accepted ones): in host-gw
// mode a route via each peer's address; in vxlan mode, a route to each peer's subnet via its
// VTEP address (the subnet's .0) on the device vxlanIndex, the VTEP's neighbour entry and its
// forwarding entry.
func (c *RoutesConfig) wantEntries(into *routeEntries, peers []Peer, vxlanIndex int) {
	if into.routes == nil {
		*into = newRouteEntries(c.Mode, len(peers))
	}
	clear(into.routes)
	clear(into.neighs)
	clear(into.fdb)
	for _, p := range peers {
		if c.Mode == RouteModeHostGW {
			into.routes[p.Subnet] = peerRoute{node: p.Node, gw: p.Addr}
			continue
		}
		vtep := p.Subnet.Addr()
		mac, _ := vtepMACOf(p.Subnet)
		into.routes[p.Subnet] = peerRoute{node: p.Node, gw: vtep, link: vxlanIndex}
		into.neighs[vtep] = mac
		into.fdb[mac] = p.Addr
	}
}

// acceptPeers splits peers into the claims that are safe to route (subnets canonical) and one
// error per refused peer. Claims are untrusted beyond their owner, so a peer is refused when its
// subnet is outside the cluster range or overlaps this node's or another peer's (every peer in
// an overlap is refused: no traffic goes to a node that may not own the address), when its
// address is unusable or inside the cluster range, or when its node is listed twice.
// It costs O(n log n) for n peers.
func (c *RoutesConfig) acceptPeers(peers []Peer) ([]Peer, []error) {
	var errs []error
	refuse := func(p Peer, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: node %q (%v, subnet %v): %s",
			ErrPeerRefused, p.Node, p.Addr, p.Subnet, fmt.Sprintf(format, args...)))
	}
	valid := make([]Peer, 0, len(peers))
	for _, p := range peers {
		p.Addr, p.Subnet = p.Addr.Unmap(), p.Subnet.Masked()
		if reason := c.peerProblem(p); reason != "" {
			refuse(p, "%s", reason)
			continue
		}
		valid = append(valid, p)
	}

	refused := make([]string, len(valid)) // why valid[i] is refused after all; "" if it is not
	first := make(map[string]int, len(valid))
	for i, p := range valid {
		if j, dup := first[p.Node]; dup {
			refused[i], refused[j] = "node listed twice", "node listed twice"
			continue
		}
		first[p.Node] = i
	}
	// Prefixes either nest or are disjoint. Sorted by address, then widest first, a prefix
	// overlaps an earlier one only if it lies inside the last one that lay inside no other.
	order := make([]int, len(valid))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		pa, pb := valid[a].Subnet, valid[b].Subnet
		return cmp.Or(pa.Addr().Compare(pb.Addr()), cmp.Compare(pa.Bits(), pb.Bits()))
	})
	outer := -1
	for _, i := range order {
		if outer >= 0 && valid[outer].Subnet.Overlaps(valid[i].Subnet) {
			refused[i] = fmt.Sprintf("subnet overlaps node %q's %v", valid[outer].Node, valid[outer].Subnet)
			refused[outer] = fmt.Sprintf("subnet overlaps node %q's %v", valid[i].Node, valid[i].Subnet)
			continue
		}
		outer = i
	}

	accepted := make([]Peer, 0, len(valid))
	for i, p := range valid {
		if refused[i] != "" {
			refuse(p, "%s", refused[i])
			continue
		}
		accepted = append(accepted, p)
	}
	return accepted, errs
}

// peerProblem says what is wrong with one peer's claim on its own, or "" if nothing is.
func (c *RoutesConfig) peerProblem(p Peer) string {
	switch {
	case p.Node == "":
		return "no node name"
	case !p.Subnet.IsValid() || !p.Subnet.Addr().Is4():
		return "subnet is not an IPv4 prefix"
	case !prefixWithin(p.Subnet, c.ClusterCIDR):
		return fmt.Sprintf("subnet is outside the cluster CIDR %v", c.ClusterCIDR)
	case p.Subnet.Overlaps(c.LocalSubnet):
		return fmt.Sprintf("subnet overlaps this node's %v", c.LocalSubnet)
	case !usableNodeAddr(p.Addr):
		return "address is not a unicast IPv4 address"
	case c.ClusterCIDR.Contains(p.Addr):
		return fmt.Sprintf("address is inside the cluster CIDR %v", c.ClusterCIDR)
	case p.Addr == c.LocalAddr:
		return "address is this node's"
	}
	return ""
}

// prefixWithin says whether inner lies entirely inside outer.
func prefixWithin(inner, outer netip.Prefix) bool {
	return outer.IsValid() && inner.IsValid() && inner.Bits() >= outer.Bits() && outer.Contains(inner.Addr())
}

// usableNodeAddr says whether a is an IPv4 address a node can have and route to.
func usableNodeAddr(a netip.Addr) bool {
	return a.Is4() && !a.IsUnspecified() && !a.IsLoopback() && !a.IsMulticast() &&
		a != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}
