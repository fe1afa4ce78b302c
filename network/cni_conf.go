package network

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
)

// The CNI network configuration list, as the plugins read it. Only the fields Shoal sets
// are here; the plugins' documentation has the rest.
type (
	confList struct {
		CNIVersion string `json:"cniVersion"`
		Name       string `json:"name"`
		Plugins    []any  `json:"plugins"`
	}
	loopbackConf struct {
		Type string `json:"type"`
	}
	bridgeConf struct {
		Type string `json:"type"`
		// Capabilities asks libcni for the "ips" runtime argument: an address the
		// instance asks for, which host-local then reserves instead of picking one.
		Capabilities map[string]bool `json:"capabilities"`
		Bridge       string          `json:"bridge"`
		// IsGateway puts the subnet's gateway address on the bridge and makes it the
		// instances' default route.
		IsGateway bool `json:"isGateway"`
		// ForceAddress replaces the bridge's address when the subnet changed, instead of
		// failing every Attach after it.
		ForceAddress bool `json:"forceAddress"`
		// HairpinMode lets an instance reach itself through a Service address.
		HairpinMode bool `json:"hairpinMode"`
		// IPMasq is off: masquerade is the Service proxy's, in nftables.
		IPMasq bool     `json:"ipMasq"`
		MTU    int      `json:"mtu,omitempty"`
		IPAM   ipamConf `json:"ipam"`
	}
	ipamConf struct {
		Type    string        `json:"type"`
		Ranges  [][]ipamRange `json:"ranges"`
		Routes  []ipamRoute   `json:"routes"`
		DataDir string        `json:"dataDir"`
	}
	ipamRange struct {
		Subnet  string `json:"subnet"`
		Gateway string `json:"gateway"`
	}
	ipamRoute struct {
		Dst string `json:"dst"`
	}
	portmapConf struct {
		Type         string          `json:"type"`
		Capabilities map[string]bool `json:"capabilities"`
		// SNAT masquerades connections to a host port from the node itself and hairpin
		// ones, which would otherwise come back with the wrong source.
		SNAT bool `json:"snat"`
	}
	// cniPortMapping is a PortMapping in the portMappings capability's form.
	cniPortMapping struct {
		HostPort      uint16 `json:"hostPort"`
		ContainerPort uint16 `json:"containerPort"`
		Protocol      string `json:"protocol"`
		HostIP        string `json:"hostIP,omitempty"`
	}
)

// confList is the network configuration list for one attachment: loopback, bridge with
// host-local IPAM over subnet, and portmap when the instance has host ports. Debian
// bookworm's portmap (1.1.1) programs iptables (iptables-nft on Debian) in the node's
// namespace; it has no nftables backend yet.
func (n *PodNetwork) confList(subnet netip.Prefix, mtu int, portmap bool) (*libcni.NetworkConfigList, error) {
	defaultRoute := "0.0.0.0/0"
	if subnet.Addr().Is6() {
		defaultRoute = "::/0"
	}
	plugins := []any{
		loopbackConf{Type: pluginLoopback},
		bridgeConf{
			Type:         pluginBridge,
			Capabilities: map[string]bool{"ips": true},
			Bridge:       n.cfg.Bridge,
			IsGateway:    true,
			ForceAddress: true,
			HairpinMode:  true,
			MTU:          mtu,
			IPAM: ipamConf{
				Type:    pluginHostLocal,
				Ranges:  [][]ipamRange{{{Subnet: subnet.String(), Gateway: subnet.Addr().Next().String()}}},
				Routes:  []ipamRoute{{Dst: defaultRoute}},
				DataDir: n.ipamDir(),
			},
		},
	}
	if portmap {
		plugins = append(plugins, portmapConf{
			Type:         pluginPortmap,
			Capabilities: map[string]bool{"portMappings": true},
			SNAT:         true,
		})
	}
	b, err := json.Marshal(confList{CNIVersion: cniVersion, Name: n.cfg.NetworkName, Plugins: plugins})
	if err != nil {
		return nil, fmt.Errorf("network: CNI configuration: %w", err)
	}
	return parseConfList(b)
}

func parseConfList(b []byte) (*libcni.NetworkConfigList, error) {
	list, err := libcni.ConfListFromBytes(b)
	if err != nil {
		return nil, fmt.Errorf("network: CNI configuration: %w", err)
	}
	return list, nil
}

// runtimeConf is what libcni passes to the plugins for one instance: the address it asks
// for, if valid, and its port mappings. netns may be empty (a DEL after the namespace is
// gone: the plugins then only release what they hold on the node's side).
func (n *PodNetwork) runtimeConf(id, netns string, addr netip.Addr, ports []cniPortMapping) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{ContainerID: id, NetNS: netns, IfName: ifName, CapabilityArgs: map[string]any{}}
	if addr.IsValid() {
		rt.CapabilityArgs["ips"] = []string{addr.String()}
	}
	if len(ports) > 0 {
		rt.CapabilityArgs["portMappings"] = ports
	}
	return rt
}

// cniPorts checks port mappings and puts them in the plugin's form.
func cniPorts(ports []PortMapping) ([]cniPortMapping, error) {
	out := make([]cniPortMapping, 0, len(ports))
	for _, p := range ports {
		proto := strings.ToLower(p.Protocol)
		switch proto {
		case "":
			proto = "tcp"
		case "tcp", "udp", "sctp":
		default:
			return nil, fmt.Errorf("network: port mapping %d->%d: unknown protocol %q", p.HostPort, p.ContainerPort, p.Protocol)
		}
		if p.HostPort == 0 || p.ContainerPort == 0 {
			return nil, fmt.Errorf("network: port mapping %d->%d: ports must not be 0", p.HostPort, p.ContainerPort)
		}
		m := cniPortMapping{HostPort: p.HostPort, ContainerPort: p.ContainerPort, Protocol: proto}
		if p.HostIP.IsValid() {
			m.HostIP = p.HostIP.String()
		}
		out = append(out, m)
	}
	return out, nil
}

// cacheName is the name libcni gives the cache entry of an instance.
func (n *PodNetwork) cacheName(id string) string {
	return n.cfg.NetworkName + "-" + id + "-" + ifName
}

// cachePath is libcni's cache entry of an instance.
func (n *PodNetwork) cachePath(id string) string {
	return filepath.Join(n.cfg.StateDir, "cache", "results", n.cacheName(id))
}
