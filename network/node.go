package network

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"

	"github.com/vishvananda/netlink"
)

// Node is one node's pod network as the agent drives it: the bridge and addresses of its
// instances (PodNetwork), the Service proxy (Proxy) and the routes to the other nodes'
// subnets (Routes), plus the node's subnet claim, kept in a file so that a restarted
// agent claims the same subnet. Its methods are called from one goroutine at a time.
type Node struct {
	cfg    NodeConfig
	mu     sync.Mutex
	routes *Routes // nil until the node has a subnet
	// peers are the last peers asked for, programmed once routes exist.
	peers    []Peer
	peersSet bool
}

// NodeConfig says how to build a Node.
type NodeConfig struct {
	// ClaimFile is where the node's subnet claim is kept across restarts.
	ClaimFile string
	// Pods attaches instances; Proxy programs Services. Both are created by the caller
	// (the executor needs Pods before the node has a subnet) and owned by it.
	Pods  *PodNetwork
	Proxy *Proxy
	// Routes configures the routes to the other nodes; LocalSubnet is filled in from the
	// claim. Without a LocalAddr (a node alone, without a cluster) there are no routes.
	Routes RoutesConfig
	// ServiceCIDR is the Services' range: a node without a route to it (no default
	// route, as in a network namespace) gets one over its uplink, so that the node itself
	// reaches virtual IPs; the proxy rewrites them before they leave.
	ServiceCIDR netip.Prefix
	Logger      *slog.Logger
}

// OpenNode returns the node's pod network. Nothing is programmed until SetSubnet.
func OpenNode(cfg NodeConfig) (*Node, error) {
	if cfg.Pods == nil || cfg.Proxy == nil || cfg.ClaimFile == "" {
		return nil, errors.New("network: node: a pod network, a proxy and a claim file are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Node{cfg: cfg}, nil
}

// LoadClaim reads the subnet claim a node kept in file; the zero claim when there is none.
func LoadClaim(file string) (SubnetClaim, error) {
	data, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return SubnetClaim{}, nil
	}
	if err != nil {
		return SubnetClaim{}, err
	}
	var c SubnetClaim
	if err := json.Unmarshal(data, &c); err != nil {
		return SubnetClaim{}, fmt.Errorf("network: subnet claim %s: %w", file, err)
	}
	return c, nil
}

// saveClaim writes claim to file atomically.
func saveClaim(file string, claim SubnetClaim) error {
	data, err := json.Marshal(claim)
	if err != nil {
		return err
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}

// SetSubnet makes claim the node's subnet: kept in the claim file, given to the bridge's
// address management, and to the routes (created, or created again for a new subnet).
func (n *Node) SetSubnet(claim SubnetClaim) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(n.cfg.ClaimFile), 0o700); err != nil {
		return err
	}
	if err := saveClaim(n.cfg.ClaimFile, claim); err != nil {
		return fmt.Errorf("network: keeping the subnet claim: %w", err)
	}
	if err := n.cfg.Pods.SetSubnet(claim.Subnet); err != nil {
		return err
	}
	if !n.cfg.Routes.LocalAddr.IsValid() || n.routes != nil && n.routes.cfg.LocalSubnet == claim.Subnet {
		return nil
	}
	if n.routes != nil {
		if err := n.routes.Close(); err != nil {
			n.cfg.Logger.Warn("removing the routes of the old subnet", "err", err)
		}
		n.routes = nil
	}
	rc := n.cfg.Routes
	rc.LocalSubnet = claim.Subnet
	r, err := NewRoutes(rc)
	if err != nil {
		return err
	}
	n.routes = r
	if err := routeServices(n.cfg.ServiceCIDR, rc.LocalAddr); err != nil {
		n.cfg.Logger.Warn("the node itself may not reach Services' virtual IPs", "err", err)
	}
	if n.peersSet {
		return r.Sync(n.peers)
	}
	return nil
}

// SyncServices programs the Services' virtual IPs and node ports.
func (n *Node) SyncServices(services []Service) error { return n.cfg.Proxy.Sync(services) }

// UpdateServices programs what changed of the Services since the last call.
func (n *Node) UpdateServices(changed []Service, removed []ServiceKey) error {
	return n.cfg.Proxy.Update(changed, removed)
}

// SyncPeers routes the other nodes' subnets; before the node has a subnet they are kept
// for when it does.
func (n *Node) SyncPeers(peers []Peer) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.peers, n.peersSet = peers, true
	if n.routes == nil {
		return nil
	}
	return n.routes.Sync(peers)
}

// Rescan lets the routes notice what changed outside them, so that the next sync repairs it.
func (n *Node) Rescan() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.routes == nil {
		return nil
	}
	if err := n.routes.Rescan(); err != nil {
		return err
	}
	if n.peersSet {
		return n.routes.Sync(n.peers)
	}
	return nil
}

// Detach lets go of the kernel state without removing it: a restarted agent takes it
// over while instances keep being reached.
func (n *Node) Detach() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	var errs []error
	if n.routes != nil {
		errs = append(errs, n.routes.Detach())
	}
	errs = append(errs, n.cfg.Proxy.Detach())
	return errors.Join(errs...)
}

// serviceRouteProtocol marks the route routeServices adds (RouteProtocol marks the peers').
const serviceRouteProtocol netlink.RouteProtocol = RouteProtocol + 1

// routeServices routes the service range over the link holding nodeAddr, unless a route
// covers it already (a default route does).
func routeServices(serviceCIDR netip.Prefix, nodeAddr netip.Addr) error {
	if !serviceCIDR.IsValid() || !nodeAddr.IsValid() {
		return nil
	}
	if routes, err := netlink.RouteGet(serviceCIDR.Addr().AsSlice()); err == nil && len(routes) > 0 {
		return nil
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == nodeAddr {
			return netlink.RouteReplace(&netlink.Route{
				Dst: ipNetOf(serviceCIDR), LinkIndex: a.LinkIndex, Src: nodeAddr.AsSlice(),
				Scope: netlink.SCOPE_LINK, Protocol: serviceRouteProtocol,
			})
		}
	}
	return fmt.Errorf("network: no link holds the node's address %s", nodeAddr)
}
