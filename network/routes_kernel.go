package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// dumpAttempts bounds the retries of a netlink dump the kernel interrupted (the table changed
// while it was read), after which the dump's result may be inconsistent.
const dumpAttempts = 5

// openNetlink opens a netlink handle in the namespace at path ("" for the caller's).
func openNetlink(path string) (*netlink.Handle, error) {
	if path == "" {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return nil, fmt.Errorf("network: netlink: %w", err)
		}
		return h, nil
	}
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("network: open netns %s: %w", path, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("network: netlink in %s: %w", path, err)
	}
	return h, nil
}

// doInNetNS runs fn on a thread that has entered the namespace at path ("" runs fn here).
// The thread is locked and never unlocked, so the runtime discards it when fn returns instead
// of handing a thread in a foreign namespace to other goroutines.
func doInNetNS(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		ns, err := netns.GetFromPath(path)
		if err != nil {
			done <- fmt.Errorf("network: open netns %s: %w", path, err)
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			done <- fmt.Errorf("network: enter netns %s: %w", path, err)
			return
		}
		done <- fn()
	}()
	return <-done
}

// enableIPv4Forwarding sets net.ipv4.ip_forward=1 in the namespace at path. /proc/sys/net
// shows the namespace of the thread that opens it, so this never touches another namespace.
func enableIPv4Forwarding(path string) error {
	const knob = "/proc/sys/net/ipv4/ip_forward"
	return doInNetNS(path, func() error {
		cur, err := os.ReadFile(knob)
		if err != nil {
			return fmt.Errorf("network: read %s: %w", knob, err)
		}
		if strings.TrimSpace(string(cur)) == "1" {
			return nil
		}
		if err := os.WriteFile(knob, []byte("1"), 0o644); err != nil {
			return fmt.Errorf("network: enable IPv4 forwarding: %w", err)
		}
		return nil
	})
}

// linkWithAddr finds the link that holds addr.
func (r *Routes) linkWithAddr(addr netip.Addr) (netlink.Link, error) {
	addrs, err := r.h.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("network: list addresses: %w", err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == addr {
			l, err := r.h.LinkByIndex(a.LinkIndex)
			if err != nil {
				return nil, fmt.Errorf("network: link of %v: %w", addr, err)
			}
			return l, nil
		}
	}
	return nil, fmt.Errorf("%w: local address %v is on no link of the namespace", ErrInvalidRoutesConfig, addr)
}

// vxlanDevice is the VXLAN device the config calls for: tunnel source LocalAddr over the link
// that holds it, no learning (every forwarding entry comes from Sync), this node's VTEP MAC.
func (r *Routes) vxlanDevice() *netlink.Vxlan {
	mtu := r.cfg.VXLAN.MTU
	if mtu == 0 {
		mtu = r.uplink.Attrs().MTU - vxlanOverhead
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.MTU, attrs.HardwareAddr = r.cfg.VXLAN.Name, mtu, VTEPMAC(r.cfg.LocalSubnet)
	return &netlink.Vxlan{
		LinkAttrs:    attrs,
		VxlanId:      int(r.cfg.VXLAN.VNI),
		VtepDevIndex: r.uplink.Attrs().Index,
		SrcAddr:      r.cfg.LocalAddr.AsSlice(),
		Port:         int(r.cfg.VXLAN.Port),
		Learning:     false,
	}
}

// tunnelDiffers says which tunnel setting of a device found in the kernel differs from want's,
// or "" if none does (MAC and MTU can change in place; these cannot).
func tunnelDiffers(have, want *netlink.Vxlan) string {
	switch {
	case have.VxlanId != want.VxlanId:
		return fmt.Sprintf("VNI %d", have.VxlanId)
	case have.Port != want.Port:
		return fmt.Sprintf("port %d", have.Port)
	case !have.SrcAddr.Equal(want.SrcAddr):
		return fmt.Sprintf("local %v", have.SrcAddr)
	case have.VtepDevIndex != want.VtepDevIndex:
		return fmt.Sprintf("underlay link %d", have.VtepDevIndex)
	case have.Learning:
		return "learning on"
	case have.FlowBased:
		return "external (flow based)"
	}
	return ""
}

// ensureVXLAN makes the VXLAN device exist as the config says, up, with this node's VTEP
// address (its subnet's .0, as a /32, as flannel) and no other. A device of that name with
// other tunnel settings is recreated, which drops its entries (the scan that follows sees it).
func (r *Routes) ensureVXLAN() error {
	want := r.vxlanDevice()
	name := want.Name
	link, err := r.h.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	switch {
	case errors.As(err, &notFound):
		link = nil
	case err != nil:
		return fmt.Errorf("network: look up %s: %w", name, err)
	default:
		have, ok := link.(*netlink.Vxlan)
		if !ok {
			return fmt.Errorf("%w: %q is a %s link, not VXLAN", ErrLinkTaken, name, link.Type())
		}
		if diff := tunnelDiffers(have, want); diff != "" {
			r.log.Info("recreating VXLAN device", "device", name, "was", diff)
			if err := r.h.LinkDel(have); err != nil {
				return fmt.Errorf("network: delete %s: %w", name, err)
			}
			link = nil
		}
	}
	if link == nil {
		if err := r.h.LinkAdd(want); err != nil {
			return fmt.Errorf("network: add VXLAN device %s: %w", name, err)
		}
		if link, err = r.h.LinkByName(name); err != nil {
			return fmt.Errorf("network: look up %s: %w", name, err)
		}
		r.log.Info("VXLAN device created", "device", name, "vni", r.cfg.VXLAN.VNI,
			"port", r.cfg.VXLAN.Port, "mac", want.HardwareAddr, "mtu", want.MTU)
	}
	attrs := link.Attrs()
	if attrs.HardwareAddr.String() != want.HardwareAddr.String() {
		if err := r.h.LinkSetHardwareAddr(link, want.HardwareAddr); err != nil {
			return fmt.Errorf("network: set MAC of %s: %w", name, err)
		}
	}
	if attrs.MTU != want.MTU {
		if err := r.h.LinkSetMTU(link, want.MTU); err != nil {
			return fmt.Errorf("network: set MTU of %s: %w", name, err)
		}
	}
	if err := r.ensureVTEPAddr(link); err != nil {
		return err
	}
	if err := r.h.LinkSetUp(link); err != nil {
		return fmt.Errorf("network: set %s up: %w", name, err)
	}
	r.vxlan, r.mtu = attrs.Index, want.MTU
	return nil
}

// ensureVTEPAddr leaves exactly this node's VTEP address on the VXLAN device.
func (r *Routes) ensureVTEPAddr(link netlink.Link) error {
	vtep := netip.PrefixFrom(r.cfg.LocalSubnet.Addr(), 32)
	addrs, err := r.h.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("network: list addresses of %s: %w", link.Attrs().Name, err)
	}
	found := false
	for _, a := range addrs {
		if have, ok := prefixOf(a.IPNet); ok && have == vtep {
			found = true
			continue
		}
		if err := r.h.AddrDel(link, &a); err != nil {
			return fmt.Errorf("network: remove %v from %s: %w", a.IPNet, link.Attrs().Name, err)
		}
	}
	if found {
		return nil
	}
	if err := r.h.AddrAdd(link, &netlink.Addr{IPNet: ipNetOf(vtep)}); err != nil {
		return fmt.Errorf("network: add %v to %s: %w", vtep, link.Attrs().Name, err)
	}
	return nil
}

// removeVXLAN deletes the VXLAN device if there is one by the configured name (with it go
// its routes, neighbour and forwarding entries). A link of that name that is not VXLAN is not
// ours and stays.
func (r *Routes) removeVXLAN() error {
	r.vxlan = 0
	link, err := r.h.LinkByName(r.cfg.VXLAN.Name)
	var notFound netlink.LinkNotFoundError
	switch {
	case errors.As(err, &notFound):
		return nil
	case err != nil:
		return fmt.Errorf("network: look up %s: %w", r.cfg.VXLAN.Name, err)
	}
	if _, ok := link.(*netlink.Vxlan); !ok {
		return nil
	}
	if err := r.h.LinkDel(link); err != nil {
		return fmt.Errorf("network: delete %s: %w", r.cfg.VXLAN.Name, err)
	}
	r.log.Info("VXLAN device removed", "device", r.cfg.VXLAN.Name)
	return nil
}

// scan reads what the kernel holds of ours: the routes with RouteProtocol and, in vxlan mode,
// the permanent neighbour and forwarding entries on the VXLAN device (all of which are ours;
// entries the kernel itself caches there are not permanent and are left to it).
func (r *Routes) scan() (routeEntries, error) {
	have := newRouteEntries(r.cfg.Mode, 0)
	routes, err := r.scanRoutes()
	if err != nil {
		return have, err
	}
	have.routes = routes
	if r.vxlan == 0 {
		return have, nil
	}
	neighs, err := retryDump(func() ([]netlink.Neigh, error) { return r.h.NeighList(r.vxlan, netlink.FAMILY_V4) })
	if err != nil {
		return have, fmt.Errorf("network: list neighbours: %w", err)
	}
	for _, n := range neighs {
		ip, ok := netip.AddrFromSlice(n.IP)
		mac, isMAC := macOf(n.HardwareAddr)
		if ok && isMAC && n.LinkIndex == r.vxlan && n.State&netlink.NUD_PERMANENT != 0 {
			have.neighs[ip.Unmap()] = mac
		}
	}
	fdb, err := retryDump(func() ([]netlink.Neigh, error) { return r.h.NeighList(r.vxlan, unix.AF_BRIDGE) })
	if err != nil {
		return have, fmt.Errorf("network: list forwarding entries: %w", err)
	}
	for _, n := range fdb {
		ip, ok := netip.AddrFromSlice(n.IP)
		mac, isMAC := macOf(n.HardwareAddr)
		if ok && isMAC && n.LinkIndex == r.vxlan && n.State&netlink.NUD_PERMANENT != 0 {
			have.fdb[mac] = ip.Unmap()
		}
	}
	return have, nil
}

// scanRoutes reads the main table's IPv4 routes with RouteProtocol.
func (r *Routes) scanRoutes() (map[netip.Prefix]peerRoute, error) {
	filter := &netlink.Route{Protocol: RouteProtocol, Table: unix.RT_TABLE_MAIN}
	list, err := retryDump(func() ([]netlink.Route, error) {
		return r.h.RouteListFiltered(netlink.FAMILY_V4, filter, netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return nil, fmt.Errorf("network: list routes: %w", err)
	}
	routes := make(map[netip.Prefix]peerRoute, len(list))
	for _, rt := range list {
		dst := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		if rt.Dst != nil {
			dst, _ = prefixOf(rt.Dst)
		}
		gw, _ := netip.AddrFromSlice(rt.Gw)
		routes[dst] = peerRoute{gw: gw.Unmap(), link: rt.LinkIndex}
	}
	return routes, nil
}

// retryDump runs a netlink dump again while the kernel reports it interrupted.
func retryDump[T any](dump func() ([]T, error)) ([]T, error) {
	var err error
	for range dumpAttempts {
		var list []T
		if list, err = dump(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			return list, err
		}
	}
	return nil, err
}

// apply brings the kernel from r.have to want, recording each change that succeeds in r.have
// and returning one error per change that fails (the next Sync tries it again). Removals go
// first, so a subnet that moved never points at two nodes; forwarding and neighbour entries
// come before the routes that use them.
func (r *Routes) apply(want routeEntries) []error {
	var errs []error
	added, removed := 0, 0
	for dst, have := range r.have.routes {
		if _, keep := want.routes[dst]; !keep {
			if err := r.delRoute(dst, have); err != nil {
				errs = append(errs, err)
				continue
			}
			delete(r.have.routes, dst)
			removed++
		}
	}
	for ip, mac := range r.have.neighs {
		if _, keep := want.neighs[ip]; !keep {
			if err := r.h.NeighDel(r.neigh(ip, mac)); err != nil && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("network: delete neighbour %v: %w", ip, err))
				continue
			}
			delete(r.have.neighs, ip)
		}
	}
	for mac, dst := range r.have.fdb {
		if _, keep := want.fdb[mac]; !keep {
			if err := r.h.NeighDel(r.fdbEntry(mac, dst)); err != nil && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("network: delete forwarding entry %v: %w", mac, err))
				continue
			}
			delete(r.have.fdb, mac)
		}
	}
	for mac, dst := range want.fdb {
		if have, ok := r.have.fdb[mac]; !ok || have != dst {
			if err := r.h.NeighSet(r.fdbEntry(mac, dst)); err != nil {
				errs = append(errs, fmt.Errorf("network: forwarding entry %v → %v: %w", mac, dst, err))
				continue
			}
			r.have.fdb[mac] = dst
		}
	}
	for ip, mac := range want.neighs {
		if have, ok := r.have.neighs[ip]; !ok || have != mac {
			if err := r.h.NeighSet(r.neigh(ip, mac)); err != nil {
				errs = append(errs, fmt.Errorf("network: neighbour %v → %v: %w", ip, mac, err))
				continue
			}
			r.have.neighs[ip] = mac
		}
	}
	for dst, w := range want.routes {
		have, ok := r.have.routes[dst]
		if ok && w.satisfies(have) {
			if have.node != w.node { // a route taken over from a previous run
				have.node = w.node
				r.have.routes[dst] = have
			}
			continue
		}
		done, err := r.putRoute(dst, w, ok)
		if err != nil {
			errs = append(errs, err)
			// The old route leads where the peer no longer is: better none than a wrong one.
			if ok && r.delRoute(dst, have) == nil {
				delete(r.have.routes, dst)
				removed++
			}
			continue
		}
		r.have.routes[dst] = done
		added++
	}
	if added+removed > 0 {
		r.log.Info("routes synced", "set", added, "removed", removed, "routes", len(r.have.routes))
	}
	return errs
}

// putRoute adds (or, when ours already exists, replaces) the route to dst that w describes
// and returns it as programmed. In host-gw mode the next hop must be directly connected.
func (r *Routes) putRoute(dst netip.Prefix, w peerRoute, ours bool) (peerRoute, error) {
	rt := &netlink.Route{
		Dst:       ipNetOf(dst),
		Gw:        w.gw.AsSlice(),
		LinkIndex: w.link,
		Protocol:  RouteProtocol,
		Table:     unix.RT_TABLE_MAIN,
	}
	if r.cfg.Mode == RouteModeVXLAN {
		rt.Flags = int(netlink.FLAG_ONLINK)
	} else {
		link, err := r.onLinkIndex(w)
		if err != nil {
			return peerRoute{}, err
		}
		rt.LinkIndex = link
	}
	var err error
	if ours {
		err = r.h.RouteReplace(rt)
	} else if err = r.h.RouteAdd(rt); errors.Is(err, unix.EEXIST) {
		err = r.replaceIfOurs(dst, rt)
	}
	if err != nil {
		return peerRoute{}, fmt.Errorf("network: route %v via %v (node %q): %w", dst, w.gw, w.node, err)
	}
	r.log.Debug("route set", "node", w.node, "subnet", dst, "via", w.gw, "link", rt.LinkIndex)
	return peerRoute{node: w.node, gw: w.gw, link: rt.LinkIndex}, nil
}

// replaceIfOurs replaces the existing route to dst with rt if it has RouteProtocol (one this
// Routes did not know of), and refuses with ErrRouteTaken if it has not.
func (r *Routes) replaceIfOurs(dst netip.Prefix, rt *netlink.Route) error {
	filter := &netlink.Route{Dst: ipNetOf(dst), Table: unix.RT_TABLE_MAIN}
	list, err := retryDump(func() ([]netlink.Route, error) {
		return r.h.RouteListFiltered(netlink.FAMILY_V4, filter, netlink.RT_FILTER_DST|netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return err
	}
	for _, have := range list {
		if have.Protocol != RouteProtocol && have.Priority == rt.Priority {
			return fmt.Errorf("%w (protocol %v)", ErrRouteTaken, have.Protocol)
		}
	}
	return r.h.RouteReplace(rt)
}

// onLinkIndex finds the link through which the kernel reaches a host-gw peer's address, and
// refuses a peer the kernel reaches through a gateway (or not at all): that peer is not on
// one of this node's connected subnets, so it is not on this node's L2 segment.
func (r *Routes) onLinkIndex(w peerRoute) (int, error) {
	got, err := r.h.RouteGet(w.gw.AsSlice())
	if err != nil || len(got) == 0 {
		return 0, fmt.Errorf("%w: node %q at %v: no route to it: %v", ErrNotOnLink, w.node, w.gw, err)
	}
	switch rt := got[0]; {
	case rt.Gw != nil:
		return 0, fmt.Errorf("%w: node %q at %v is reached via the gateway %v", ErrNotOnLink, w.node, w.gw, rt.Gw)
	case rt.Type == unix.RTN_LOCAL:
		return 0, fmt.Errorf("%w: node %q at %v: the address is this node's", ErrPeerRefused, w.node, w.gw)
	case rt.LinkIndex == 0 || rt.Type != unix.RTN_UNICAST:
		return 0, fmt.Errorf("%w: node %q at %v: no unicast route to it", ErrNotOnLink, w.node, w.gw)
	default:
		return rt.LinkIndex, nil
	}
}

// delRoute deletes our route to dst. Naming the protocol makes the kernel delete only a route
// of ours; one already gone is not an error.
func (r *Routes) delRoute(dst netip.Prefix, have peerRoute) error {
	rt := &netlink.Route{Dst: ipNetOf(dst), Protocol: RouteProtocol, Table: unix.RT_TABLE_MAIN}
	if err := r.h.RouteDel(rt); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("network: delete route %v via %v: %w", dst, have.gw, err)
	}
	r.log.Debug("route removed", "node", have.node, "subnet", dst, "via", have.gw)
	return nil
}

// neigh is the permanent neighbour entry for a peer's VTEP address on the VXLAN device.
func (r *Routes) neigh(ip netip.Addr, mac vtepMAC) *netlink.Neigh {
	return &netlink.Neigh{
		LinkIndex:    r.vxlan,
		Family:       netlink.FAMILY_V4,
		State:        netlink.NUD_PERMANENT,
		Type:         unix.RTN_UNICAST,
		IP:           ip.AsSlice(),
		HardwareAddr: mac[:],
	}
}

// fdbEntry is the permanent forwarding entry that sends frames for a peer's VTEP MAC to the
// peer node's address.
func (r *Routes) fdbEntry(mac vtepMAC, dst netip.Addr) *netlink.Neigh {
	return &netlink.Neigh{
		LinkIndex:    r.vxlan,
		Family:       unix.AF_BRIDGE,
		State:        netlink.NUD_PERMANENT,
		Flags:        netlink.NTF_SELF,
		IP:           dst.AsSlice(),
		HardwareAddr: mac[:],
	}
}

// ipNetOf converts a prefix to the form netlink takes.
func ipNetOf(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// prefixOf converts netlink's form of a prefix (IPv4 ones unmapped).
func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(n.IP)
	ones, bits := n.Mask.Size()
	if !ok || bits == 0 {
		return netip.Prefix{}, false
	}
	if ip.Is4In6() && bits == 128 {
		ones -= 96
	}
	return netip.PrefixFrom(ip.Unmap(), ones).Masked(), true
}

// macOf converts a 6-byte hardware address.
func macOf(hw net.HardwareAddr) (vtepMAC, bool) {
	var m vtepMAC
	if len(hw) != len(m) {
		return m, false
	}
	copy(m[:], hw)
	return m, true
}
