package agent

import (
	"net/netip"
	"reflect"
	"sort"
	"time"

	"github.com/shoalhq/shoal/dns"
	"github.com/shoalhq/shoal/executor"
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

// publishDNS rebuilds the DNS records from the desired Services and the instances of the
// whole cluster, and swaps them in when they changed. Only ready instances are answered.
func (a *Agent) publishDNS(now time.Time) {
	if a.dns.Server == nil || a.desired == nil {
		return
	}
	services := a.dnsServices(now)
	if reflect.DeepEqual(services, a.dnsPublished) {
		return
	}
	snap, err := dns.NewSnapshot(a.dns.Domain, services)
	if err != nil {
		a.log.Error("DNS records not updated", "err", err)
		return
	}
	a.dns.Server.Swap(snap)
	a.dnsPublished = services
}

// dnsServices lists every desired Service with the instances its selector matches.
func (a *Agent) dnsServices(now time.Time) []dns.Service {
	type endpointKey struct{ namespace, workload string }
	endpoints := map[endpointKey][]dns.Endpoint{}
	add := func(namespace, workload, id, addr string, ready bool) {
		ip, err := netip.ParseAddr(addr)
		if err != nil {
			return
		}
		k := endpointKey{namespace, workload}
		endpoints[k] = append(endpoints[k], dns.Endpoint{Hostname: id, Addr: ip, Ready: ready})
	}
	for _, in := range a.instances {
		if !in.stopping && in.created {
			add(in.namespace, in.workload, in.id, a.cfg.NodeAddr, in.phase(now) == PhaseReady)
		}
	}
	for _, in := range a.lastView.Instances {
		if in.Node != a.cfg.NodeName && in.Running {
			add(in.Namespace, in.Workload, in.ID, in.Addr, in.Ready)
		}
	}
	set := a.desired.Objects
	var out []dns.Service
	for _, svc := range set.Services {
		ds := dns.Service{
			Namespace: svc.Metadata.Namespace, Name: svc.Metadata.Name,
			Headless: svc.Spec.ClusterIP == spec.ClusterIPNone,
		}
		var matched []*spec.Deployment
		for _, d := range set.Deployments {
			if d.Metadata.Namespace == svc.Metadata.Namespace && len(svc.Spec.Selector) > 0 &&
				(&spec.LabelSelector{MatchLabels: svc.Spec.Selector}).Matches(d.Spec.Template.Metadata.Labels) {
				matched = append(matched, d)
				ds.Endpoints = append(ds.Endpoints, endpoints[endpointKey{d.Metadata.Namespace, d.Metadata.Name}]...)
			}
		}
		for _, p := range svc.Spec.Ports {
			ds.Ports = append(ds.Ports, dns.Port{Name: p.Name, Protocol: p.Protocol, Port: targetPort(p, matched)})
		}
		sort.Slice(ds.Endpoints, func(i, j int) bool { return ds.Endpoints[i].Hostname < ds.Endpoints[j].Hostname })
		out = append(out, ds)
	}
	return out
}

// targetPort is the port clients dial on an endpoint: with host networking there is no
// virtual IP to translate a Service port, so SRV records carry the target port, resolved
// by name against the matched pod templates.
func targetPort(p spec.ServicePort, matched []*spec.Deployment) int32 {
	if p.TargetPort == nil {
		return p.Port
	}
	if !p.TargetPort.IsString {
		return p.TargetPort.Int
	}
	for _, d := range matched {
		for _, c := range d.Spec.Template.Spec.Containers {
			if n, ok := spec.NamedPort(c.Ports, p.TargetPort.Str); ok {
				return n
			}
		}
	}
	return p.Port
}

// resolveOptions are the node's settings that go into every instance it runs: the pod IP
// (the node's address, under host networking) and, with DNS, a resolv.conf naming the
// node's DNS server with the Kubernetes search path of the instance's namespace.
func (a *Agent) resolveOptions(namespace string) []executor.ResolveOption {
	opts := []executor.ResolveOption{executor.WithPodIP(a.cfg.NodeAddr)}
	if a.dns.Server != nil && a.dns.Nameserver.IsValid() {
		opts = append(opts, executor.WithResolvConf(dns.ContainerResolvConf(a.dns.Nameserver, namespace, a.dns.Domain, 5)))
	}
	return opts
}
