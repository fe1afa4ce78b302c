package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/shoalhq/shoal/agent"
	"github.com/shoalhq/shoal/network"
)

// networkFlags are the pod network's flags of `shoal agent`. Every node of a cluster must
// be given the same ranges and mode.
type networkFlags struct {
	podNetwork    string
	clusterCIDR   string
	nodeCIDRSize  int
	serviceCIDR   string
	nodePortRange string
	routeMode     string
}

func (f *networkFlags) register(fl *pflag.FlagSet) {
	d := agent.DefaultNetwork()
	fl.StringVar(&f.podNetwork, "pod-network", "on", `"on": each instance gets its own address from this node's pod subnet, and Services virtual IPs (needs the CNI plugins: bridge, host-local, loopback, portmap); "off": instances use the node's network and container ports are node resources`)
	fl.StringVar(&f.clusterCIDR, "cluster-cidr", d.ClusterCIDR.String(), "the pod range; each node claims a subnet of it")
	fl.IntVar(&f.nodeCIDRSize, "node-cidr-size", d.NodeSubnetBits, "prefix length of each node's pod subnet")
	fl.StringVar(&f.serviceCIDR, "service-cidr", d.ServiceCIDR.String(), "the range Services' virtual IPs come from")
	fl.StringVar(&f.nodePortRange, "node-port-range", fmt.Sprintf("%d-%d", d.NodePortMin, d.NodePortMax), "the ports NodePort Services get")
	fl.StringVar(&f.routeMode, "route-mode", string(network.RouteModeVXLAN), `how instances reach other nodes' instances: "vxlan" (an overlay, works across routed networks) or "host-gw" (routes via the nodes' addresses, for nodes on one L2 segment)`)
}

// config is the agent's network configuration, zero when the pod network is off.
func (f *networkFlags) config() (agent.NetworkConfig, error) {
	switch f.podNetwork {
	case "off":
		return agent.NetworkConfig{}, nil
	case "on":
	default:
		return agent.NetworkConfig{}, fmt.Errorf("--pod-network %q: want on or off", f.podNetwork)
	}
	var errs []error
	n := agent.NetworkConfig{NodeSubnetBits: f.nodeCIDRSize}
	var err error
	if n.ClusterCIDR, err = netip.ParsePrefix(f.clusterCIDR); err != nil {
		errs = append(errs, fmt.Errorf("--cluster-cidr: %w", err))
	}
	if n.ServiceCIDR, err = netip.ParsePrefix(f.serviceCIDR); err != nil {
		errs = append(errs, fmt.Errorf("--service-cidr: %w", err))
	}
	lo, hi, ok := strings.Cut(f.nodePortRange, "-")
	l, err1 := strconv.ParseUint(lo, 10, 16)
	h, err2 := strconv.ParseUint(hi, 10, 16)
	if !ok || err1 != nil || err2 != nil {
		errs = append(errs, fmt.Errorf("--node-port-range %q: want LOW-HIGH, e.g. 30000-32767", f.nodePortRange))
	}
	n.NodePortMin, n.NodePortMax = uint16(l), uint16(h)
	switch network.RouteMode(f.routeMode) {
	case network.RouteModeVXLAN, network.RouteModeHostGW:
	default:
		errs = append(errs, fmt.Errorf("--route-mode %q: want vxlan or host-gw", f.routeMode))
	}
	return n, errors.Join(errs...)
}

// podNetwork is a node's pod network: Pods for the executor, made first; Node for the
// agent, once the node's address is known.
type podNetwork struct {
	f         *networkFlags
	log       *slog.Logger
	claimFile string
	Pods      *network.PodNetwork
	Proxy     *network.Proxy
	Node      *network.Node
}

// openPodNetwork prepares the node's pod network under stateDir: the CNI state and the
// Service proxy's nftables table, and the subnet the node claimed before (into n).
func openPodNetwork(f *networkFlags, n *agent.NetworkConfig, stateDir string, log *slog.Logger) (*podNetwork, error) {
	pn := &podNetwork{f: f, log: log, claimFile: filepath.Join(stateDir, "network", "subnet-claim.json")}
	claim, err := network.LoadClaim(pn.claimFile)
	if err != nil {
		return nil, err
	}
	n.Claim = claim
	pcfg := network.DefaultPodNetworkConfig()
	pcfg.StateDir, pcfg.Logger = filepath.Join(stateDir, "network", "cni"), log
	if pn.Pods, err = network.NewPodNetwork(pcfg); err != nil {
		return nil, err
	}
	if pn.Proxy, err = network.NewProxy(network.ProxyConfig{ClusterCIDR: n.ClusterCIDR, Logger: log}); err != nil {
		return nil, err
	}
	return pn, nil
}

// open completes the pod network once the node's own address is known: the routes and
// the VXLAN tunnel start from it. The bridge's MTU leaves room for the VXLAN header.
func (pn *podNetwork) open(n agent.NetworkConfig, nodeAddr netip.Addr) error {
	mode := network.RouteMode(pn.f.routeMode)
	if mode == network.RouteModeVXLAN {
		pn.Pods.SetMTU(uplinkMTU(nodeAddr) - 50) // as flannel leaves it
	}
	var err error
	pn.Node, err = network.OpenNode(network.NodeConfig{
		ClaimFile: pn.claimFile, Pods: pn.Pods, Proxy: pn.Proxy, Logger: pn.log, ServiceCIDR: n.ServiceCIDR,
		Routes: network.RoutesConfig{Mode: mode, LocalAddr: nodeAddr, ClusterCIDR: n.ClusterCIDR, Logger: pn.log},
	})
	return err
}

// uplinkMTU is the MTU of the interface holding addr, 1500 when none does.
func uplinkMTU(addr netip.Addr) int {
	ifaces, err := net.Interfaces()
	if err != nil {
		return 1500
	}
	for _, ifc := range ifaces {
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(ipn.IP); ok && ip.Unmap() == addr {
					return ifc.MTU
				}
			}
		}
	}
	return 1500
}
