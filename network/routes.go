package network

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
)

// RouteMode says how a node reaches the pod subnets of the other nodes.
type RouteMode string

const (
	// RouteModeHostGW routes each peer's pod subnet via the peer's own address, as flannel's
	// host-gw backend: no encapsulation, but every node must be on one L2 segment.
	RouteModeHostGW RouteMode = "host-gw"
	// RouteModeVXLAN carries pod traffic in a kernel VXLAN overlay, as flannel's vxlan backend:
	// nodes only need to reach each other's address over UDP, across any number of routers.
	RouteModeVXLAN RouteMode = "vxlan"
)

// RouteProtocol marks the routes Routes owns (the rtm_protocol field, "proto 83" in
// `ip route`). A restarted daemon recognises its own routes by it, removes the stale ones and
// never touches a route with another protocol. 83 is ASCII 'S'; iproute2 reserves no name for it.
const RouteProtocol netlink.RouteProtocol = 83

// vxlanOverhead is what VXLAN adds to each packet over IPv4: outer IPv4 (20), UDP (8),
// VXLAN (8) and the inner Ethernet header (14).
const vxlanOverhead = 50

// maxLinkName is the longest interface name Linux accepts (IFNAMSIZ less the NUL).
const maxLinkName = 15

// maxVNI is the largest VXLAN network identifier (24 bits).
const maxVNI = 1<<24 - 1

// Errors returned by NewRoutes and Sync. Callers branch on them with errors.Is; Sync joins one
// error per peer it refused, and still programs every other peer.
var (
	// ErrInvalidRoutesConfig wraps every RoutesConfig field that fails validation.
	ErrInvalidRoutesConfig = errors.New("network: invalid routes config")
	// ErrPeerRefused means a peer's claim was not programmed: its subnet is outside the cluster
	// range or overlaps another claim, its address is unusable, or it is listed twice.
	ErrPeerRefused = errors.New("network: peer refused")
	// ErrNotOnLink means a peer's address is not on one of this node's connected subnets, so
	// host-gw cannot reach it: the nodes are not on one L2 segment (use RouteModeVXLAN).
	ErrNotOnLink = errors.New("network: peer not on this node's L2 segment")
	// ErrRouteTaken means a route to a peer's subnet already exists and is not Shoal's
	// (another protocol); it is left alone.
	ErrRouteTaken = errors.New("network: route exists and is not Shoal's")
	// ErrLinkTaken means a link with the VXLAN device's name exists and is not a VXLAN device.
	ErrLinkTaken = errors.New("network: link name taken")
	// ErrRoutesClosed is returned by a Routes after Close or Detach.
	ErrRoutesClosed = errors.New("network: routes closed")
)

// Peer is another node as this node routes to it: its own address and its pod subnet, as it
// claims them in gossip (only the claim's owner speaks for it; Sync still checks the claim).
type Peer struct {
	// Node is the peer's node name, used in logs and errors.
	Node string
	// Addr is the peer node's own address: the host-gw next hop, the VXLAN tunnel endpoint.
	Addr netip.Addr
	// Subnet is the peer's pod subnet, which must lie inside RoutesConfig.ClusterCIDR.
	Subnet netip.Prefix
}

// VXLANConfig configures the VXLAN device of RouteModeVXLAN.
type VXLANConfig struct {
	// Name is the device's name, at most 15 bytes. Default: "shoal.vxlan".
	Name string
	// VNI is the VXLAN network identifier, 1 to 16777215; the same on every node. Default: 1.
	VNI uint32
	// Port is the UDP port of the tunnel; the same on every node. Default: 8472, as flannel
	// and the Linux kernel (IANA's is 4789).
	Port uint16
	// MTU is the device's MTU in bytes. 0: the MTU of the link holding LocalAddr, less the 50
	// bytes VXLAN adds.
	MTU int
}

// RoutesConfig configures Routes. NewRoutes fills in the defaults and validates it.
type RoutesConfig struct {
	// Mode is how peers are reached. Default: RouteModeVXLAN, which works on any network.
	Mode RouteMode
	// LocalAddr is this node's own address; it must be on a link of the namespace. It is the
	// VXLAN tunnel's source, and the link that holds it is the tunnel's underlay.
	LocalAddr netip.Addr
	// LocalSubnet is this node's pod subnet, inside ClusterCIDR. Its first address (.0) is the
	// VXLAN tunnel endpoint's address, and it picks the device's MAC (VTEPMAC).
	LocalSubnet netip.Prefix
	// ClusterCIDR is the pod range all node subnets are carved from. Routes are only ever
	// made to subnets inside it.
	ClusterCIDR netip.Prefix
	// VXLAN configures the VXLAN device (RouteModeVXLAN only).
	VXLAN VXLANConfig
	// NetNS is the path of the node's network namespace (e.g. /var/run/netns/NAME).
	// Empty: the namespace of the thread that calls NewRoutes.
	NetNS string
	// Logger receives a line per change. Default: discard.
	Logger *slog.Logger
}

// withDefaults returns c with every zero field that has a default set to it: the one place
// the defaults live.
func (c RoutesConfig) withDefaults() RoutesConfig {
	if c.Mode == "" {
		c.Mode = RouteModeVXLAN
	}
	if c.VXLAN.Name == "" {
		c.VXLAN.Name = "shoal.vxlan"
	}
	if c.VXLAN.VNI == 0 {
		c.VXLAN.VNI = 1
	}
	if c.VXLAN.Port == 0 {
		c.VXLAN.Port = 8472
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.LocalAddr = c.LocalAddr.Unmap()
	c.LocalSubnet = c.LocalSubnet.Masked()
	c.ClusterCIDR = c.ClusterCIDR.Masked()
	return c
}

// validate checks a config that withDefaults has filled in.
func (c *RoutesConfig) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidRoutesConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case c.Mode != RouteModeHostGW && c.Mode != RouteModeVXLAN:
		return bad("mode %q: want %q or %q", c.Mode, RouteModeHostGW, RouteModeVXLAN)
	case !c.ClusterCIDR.IsValid() || !c.ClusterCIDR.Addr().Is4():
		return bad("cluster CIDR %v: want an IPv4 prefix", c.ClusterCIDR)
	case !c.LocalSubnet.IsValid() || !prefixWithin(c.LocalSubnet, c.ClusterCIDR):
		return bad("local subnet %v: want a prefix inside the cluster CIDR %v", c.LocalSubnet, c.ClusterCIDR)
	case !usableNodeAddr(c.LocalAddr):
		return bad("local address %v: want a unicast IPv4 address", c.LocalAddr)
	case c.ClusterCIDR.Contains(c.LocalAddr):
		return bad("local address %v is inside the cluster CIDR %v", c.LocalAddr, c.ClusterCIDR)
	}
	if err := validLinkName(c.VXLAN.Name); err != nil {
		return bad("VXLAN name: %v", err)
	}
	switch {
	case c.VXLAN.VNI > maxVNI:
		return bad("VXLAN VNI %d: want 1 to %d", c.VXLAN.VNI, maxVNI)
	case c.VXLAN.MTU != 0 && (c.VXLAN.MTU < 68 || c.VXLAN.MTU > 65535):
		return bad("VXLAN MTU %d: want 68 to 65535, or 0 for the underlay's less %d", c.VXLAN.MTU, vxlanOverhead)
	}
	return nil
}

// validLinkName checks an interface name the way the kernel's dev_valid_name does.
func validLinkName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("%q is not a valid interface name", name)
	case len(name) > maxLinkName:
		return fmt.Errorf("%q is %d bytes, more than the kernel's %d", name, len(name), maxLinkName)
	case strings.ContainsAny(name, "/: \t\n\r\v\f"):
		return fmt.Errorf("%q holds a slash, colon or space", name)
	}
	return nil
}

// Routes keeps this node's routes to the other nodes' pod subnets in step with the list of
// live peers: for RouteModeHostGW one route per peer via its address; for RouteModeVXLAN one
// VXLAN device, and per peer a route, a neighbour entry and a forwarding-database entry.
// Its methods may be called from any goroutine; they run one at a time.
type Routes struct {
	mu     sync.Mutex
	cfg    RoutesConfig
	log    *slog.Logger
	h      *netlink.Handle // nil once closed
	uplink netlink.Link    // the link holding LocalAddr, as last read
	mtu    int             // the MTU instances should use
	vxlan  int             // index of the VXLAN device; 0 in host-gw mode
	have   routeEntries    // what the kernel holds of ours, as far as this Routes knows
	want   routeEntries    // what the last Sync asked for, kept for its maps' storage
}

// NewRoutes opens the node's namespace, turns on IPv4 forwarding there, sets up the VXLAN
// device (RouteModeVXLAN) and takes over the entries a previous run left: they stay in place
// until the first Sync, which keeps those of live peers and removes the rest, so a restarted
// daemon never interrupts traffic. In host-gw mode it removes a VXLAN device left by a run in
// VXLAN mode.
func NewRoutes(cfg RoutesConfig) (*Routes, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	h, err := openNetlink(cfg.NetNS)
	if err != nil {
		return nil, err
	}
	r := &Routes{cfg: cfg, log: cfg.Logger.With("component", "routes", "mode", string(cfg.Mode)), h: h}
	if err := r.start(); err != nil {
		h.Close()
		return nil, err
	}
	return r, nil
}

// start does NewRoutes' work once the handle is open.
func (r *Routes) start() error {
	if err := enableIPv4Forwarding(r.cfg.NetNS); err != nil {
		return err
	}
	if err := r.takeOver(); err != nil {
		return err
	}
	r.log.Info("routes ready", "local", r.cfg.LocalAddr, "subnet", r.cfg.LocalSubnet,
		"mtu", r.mtu, "routes", len(r.have.routes))
	return nil
}

// takeOver finds the uplink, brings the device to the config and reads back what the
// kernel holds of ours.
func (r *Routes) takeOver() error {
	uplink, err := r.linkWithAddr(r.cfg.LocalAddr)
	if err != nil {
		return err
	}
	r.uplink, r.mtu = uplink, uplink.Attrs().MTU
	if r.cfg.Mode == RouteModeVXLAN {
		err = r.ensureVXLAN()
	} else {
		err = r.removeVXLAN()
	}
	if err != nil {
		return err
	}
	have, err := r.scan()
	if err != nil {
		return err
	}
	r.have = have
	return nil
}

// Sync brings the kernel to the routes that peers call for, touching only what differs from
// what is programmed: a peer that left loses its entries, a new or returning one gets them, a
// peer whose subnet or address changed has them replaced. It refuses (and reports, joined in
// the error) each peer whose claim is unsafe or unreachable, and programs all the others.
func (r *Routes) Sync(peers []Peer) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.h == nil {
		return ErrRoutesClosed
	}
	accepted, errs := r.cfg.acceptPeers(peers)
	r.cfg.wantEntries(&r.want, accepted, r.vxlan)
	errs = append(errs, r.apply(r.want)...)
	return errors.Join(errs...)
}

// Rescan rereads from the kernel what it holds of ours and recreates the VXLAN device if it
// went missing, so that the next Sync also repairs entries changed or removed behind this
// Routes' back (the kernel drops routes over a link that goes down). Call it now and then,
// like flannel's periodic route check; Sync alone costs only what changed.
func (r *Routes) Rescan() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.h == nil {
		return ErrRoutesClosed
	}
	return r.takeOver()
}

// MTU is the MTU instances should use on this node: the VXLAN device's in RouteModeVXLAN,
// the underlay link's in RouteModeHostGW.
func (r *Routes) MTU() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mtu
}

// Close removes everything Routes programs: every route with RouteProtocol, and the VXLAN
// device with its neighbour and forwarding entries. IPv4 forwarding stays on (instances'
// traffic to the outside needs it too). Use Detach instead to leave the network running for
// the next daemon.
func (r *Routes) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.h == nil {
		return nil
	}
	defer r.release()
	var errs []error
	owned, err := r.scanRoutes()
	errs = append(errs, err)
	for dst, rt := range owned {
		errs = append(errs, r.delRoute(dst, rt))
	}
	errs = append(errs, r.removeVXLAN())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("network: routes close: %w", err)
	}
	r.log.Info("routes removed", "routes", len(owned))
	return nil
}

// Detach releases the netlink handle and leaves every entry in place, for a daemon that
// stops without tearing down the network (a new Routes takes them over).
func (r *Routes) Detach() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.h != nil {
		r.release()
	}
	return nil
}

// release closes the handle; the Routes is unusable afterwards.
func (r *Routes) release() {
	r.h.Close()
	r.h = nil
	r.have, r.want = routeEntries{}, routeEntries{}
}
