package agent

import (
	"net/netip"
	"reflect"
	"sort"

	"github.com/shoalhq/shoal/dns"
	"github.com/shoalhq/shoal/executor"
	"github.com/shoalhq/shoal/network"
	"github.com/shoalhq/shoal/spec"
)

// DNSServer is what the agent feeds: *dns.Server is one. Swap must not block.
type DNSServer interface {
	Swap(*dns.Snapshot)
}

// DNSConfig says how the node's DNS server is reached and named.
type DNSConfig struct {
	// Server receives a new snapshot whenever the records change.
	Server DNSServer
	// Domain is the cluster domain, e.g. cluster.local.
	Domain string
	// Nameserver is the address containers reach the server at on port 53; their
	// resolv.conf names it. Invalid: containers keep the host's resolv.conf.
	Nameserver netip.Addr
}

// WithDNS makes the agent serve the cluster's Services through server and give its
// containers a resolv.conf that points at it.
func WithDNS(cfg DNSConfig) Option { return func(a *Agent) { a.dns = cfg } }

// service is a desired Service with the workloads its selector matches, found once per
// revision.
type service struct {
	svc     *spec.Service
	matched []*compiled
}

// matchServices finds the workloads each Service of set selects.
func matchServices(set *spec.Set, workloads map[workloadKey]*compiled) []service {
	out := make([]service, 0, len(set.Services))
	for _, svc := range set.Services {
		s := service{svc: svc}
		for _, d := range set.Deployments {
			w := workloads[workloadKey{d.Metadata.Namespace, d.Metadata.Name}]
			// An ExternalName Service is only an alias: its selector is ignored, as in Kubernetes.
			if w.key.namespace == svc.Metadata.Namespace && len(svc.Spec.Selector) > 0 && !svc.IsExternalName() &&
				(&spec.LabelSelector{MatchLabels: svc.Spec.Selector}).Matches(w.labels) {
				s.matched = append(s.matched, w)
			}
		}
		out = append(out, s)
	}
	return out
}

// dnsService is what DNS serves of one desired Service, from the endpoints of the
// workloads it selects (eps, by matched workload). Only ready instances are answered.
func (c *core) dnsService(s service, eps [][]endpoint) dns.Service {
	if s.svc.IsExternalName() {
		return dns.Service{Namespace: s.svc.Metadata.Namespace, Name: s.svc.Metadata.Name, ExternalName: s.svc.Spec.ExternalName}
	}
	ds := dns.Service{
		Namespace: s.svc.Metadata.Namespace, Name: s.svc.Metadata.Name,
		Headless: s.svc.Spec.ClusterIP == spec.ClusterIPNone,
		VIP:      c.net.vips[network.ServiceKey{Namespace: s.svc.Metadata.Namespace, Name: s.svc.Metadata.Name}],
	}
	for _, list := range eps {
		for _, ep := range list {
			ds.Endpoints = append(ds.Endpoints, dns.Endpoint{Hostname: ep.id, Addr: ep.addr, Ready: ep.ready})
		}
	}
	for _, p := range s.svc.Spec.Ports {
		port := p.Port // the virtual IP translates it
		if !ds.VIP.IsValid() {
			port = targetPort(p, s.matched)
		}
		ds.Ports = append(ds.Ports, dns.Port{Name: p.Name, Protocol: p.Protocol, Port: port})
	}
	sort.Slice(ds.Endpoints, func(i, j int) bool { return ds.Endpoints[i].Hostname < ds.Endpoints[j].Hostname })
	return ds
}

// equalServices reports whether two lists of DNS records are the same: at once when they
// are the same list, which they are while no Service changed (see core.refreshServices).
func equalServices(a, b []dns.Service) bool {
	if len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0]) {
		return a != nil || b == nil
	}
	return reflect.DeepEqual(a, b)
}

// targetPort is the port clients dial on an endpoint when there is no virtual IP to
// translate a Service port (host networking): SRV records carry the target port, resolved
// by name against the matched workloads.
func targetPort(p spec.ServicePort, matched []*compiled) int32 {
	for _, w := range matched {
		if n := targetPortOf(p, w); n != 0 {
			return n
		}
	}
	return p.Port
}

// resolveOptions are the node's settings that go into every instance it runs: the pod IP
// (the node's address, under host networking), the node's address and allocatable
// resources (for the Downward API) and, with DNS, a resolv.conf naming the
// node's DNS server with the Kubernetes search path of the instance's namespace.
func (c *core) resolveOptions(in *instance) []executor.ResolveOption {
	opts := []executor.ResolveOption{
		executor.WithPodIP(c.addrOf(in).String()),
		executor.WithHostIP(c.cfg.NodeAddr),
		executor.WithNodeAllocatable(executor.NodeAllocatable{
			MilliCPU: c.cfg.Allocatable.MilliCPU, MemoryBytes: c.cfg.Allocatable.MemoryBytes,
			EphemeralStorage: c.cfg.EphemeralStorageBytes,
		}),
	}
	if c.dnsOn && c.nameserver.IsValid() {
		opts = append(opts, executor.WithResolvConf(dns.ContainerResolvConf(c.nameserver, in.namespace, c.domain, 5)))
	}
	return opts
}
