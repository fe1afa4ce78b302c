package network

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// A UDP "connection" lives in conntrack as long as packets keep coming, however long ago
// its endpoint left: a client that keeps one socket (a DNS resolver, a metrics agent)
// would keep sending to an endpoint the Service no longer has. So, as kube-proxy does,
// after a Sync the proxy deletes the conntrack entries of UDP flows that the Service's
// VIP or NodePort translated to an endpoint it just removed; their next packet is
// translated afresh. TCP needs none of this: a connection to a gone endpoint fails, and
// the client's next one is new.

// proxyStaleFlow is a UDP translation that no longer holds: to dst (the VIP:port, or the
// NodePort with an unset address, whatever local address was used) towards ep.
type proxyStaleFlow struct {
	dst netip.AddrPort
	ep  Endpoint
}

// staleProxyUDPFlows returns the translations that changes take away.
func staleProxyUDPFlows(changes []proxyChange) map[proxyStaleFlow]bool {
	var stale map[proxyStaleFlow]bool
	for _, c := range changes {
		if c.old == nil || c.old.proto != ProtocolUDP {
			continue
		}
		keep := proxyUDPFlows(c.new)
		for f := range proxyUDPFlows(c.old) {
			if !keep[f] {
				if stale == nil {
					stale = map[proxyStaleFlow]bool{}
				}
				stale[f] = true
			}
		}
	}
	return stale
}

// proxyUDPFlows are the translations a UDP port programs.
func proxyUDPFlows(p *proxyPort) map[proxyStaleFlow]bool {
	if p == nil || p.proto != ProtocolUDP {
		return nil
	}
	flows := make(map[proxyStaleFlow]bool, 2*len(p.endpoints))
	for _, e := range p.endpoints {
		flows[proxyStaleFlow{netip.AddrPortFrom(p.vip, p.port), e}] = true
		if p.nodePort != 0 {
			flows[proxyStaleFlow{netip.AddrPortFrom(netip.Addr{}, p.nodePort), e}] = true
		}
	}
	return flows
}

// proxyStaleFilter matches the conntrack entries of stale flows (a netlink.CustomConntrackFilter).
type proxyStaleFilter map[proxyStaleFlow]bool

func (f proxyStaleFilter) MatchConntrackFlow(flow *netlink.ConntrackFlow) bool {
	if flow.Forward.Protocol != unix.IPPROTO_UDP {
		return false
	}
	dst, okDst := netip.AddrFromSlice(flow.Forward.DstIP)
	ep, okEp := netip.AddrFromSlice(flow.Reverse.SrcIP)
	if !okDst || !okEp {
		return false
	}
	to := Endpoint{ep.Unmap(), flow.Reverse.SrcPort}
	return f[proxyStaleFlow{netip.AddrPortFrom(dst.Unmap(), flow.Forward.DstPort), to}] ||
		f[proxyStaleFlow{netip.AddrPortFrom(netip.Addr{}, flow.Forward.DstPort), to}]
}

// forgetStaleFlows deletes the conntrack entries of stale flows in the proxy's namespace.
func (p *Proxy) forgetStaleFlows(stale map[proxyStaleFlow]bool) error {
	if len(stale) == 0 {
		return nil
	}
	h, err := netlink.NewHandleAt(netns.NsHandle(p.netns.Fd()), unix.NETLINK_NETFILTER)
	if err != nil {
		return fmt.Errorf("network: proxy: conntrack: %w", err)
	}
	defer h.Close()
	n, err := h.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, proxyStaleFilter(stale))
	if err != nil {
		return fmt.Errorf("network: proxy: conntrack: %w", err)
	}
	if n > 0 {
		p.log.Info("proxy forgot UDP flows to removed endpoints", "flows", n)
	}
	return nil
}
