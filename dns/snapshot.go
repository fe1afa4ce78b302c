package dns

import (
	"cmp"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// ErrInvalidService reports a Service that NewSnapshot cannot index: a name that is not a
// DNS label, a bad port or protocol, an invalid address, or a duplicate.
var ErrInvalidService = errors.New("invalid service")

// Service is what DNS needs to know of one Service: its name, its ports and its endpoints.
// The agent derives it from the manifests and the instances gossip reports.
type Service struct {
	// Namespace and Name are lowercase DNS labels (RFC 1123), as Kubernetes requires.
	Namespace, Name string
	// Headless marks clusterIP: None: per-instance names and SRV targets are answered.
	Headless bool
	// VIP is the Service's virtual IP; when valid (never for a headless Service) the
	// Service's name answers it, whatever is ready behind it, as in Kubernetes, and SRV
	// records name it with the Service's ports. Invalid: the name answers the ready
	// endpoints' addresses.
	VIP netip.Addr
	// Ports are the Service's ports; only named ones get SRV records.
	Ports []Port
	// Endpoints are the instances the selector matches, ready or not.
	Endpoints []Endpoint
	// ExternalName, when set, makes the Service a DNS alias (Kubernetes' type
	// ExternalName): its name answers a CNAME to this domain name, and nothing else is
	// indexed for it (no VIP, ports or endpoints may be given).
	ExternalName string
}

// Port is one port of a Service.
type Port struct {
	// Name is a DNS label, or empty for an unnamed port (no SRV record).
	Name string
	// Protocol is TCP, UDP or SCTP in any case; empty means TCP.
	Protocol string
	// Port is the number SRV answers carry: the port clients dial. With a virtual IP it is
	// the Service's port; without one (host networking) the agent passes the target port
	// the instances listen on.
	Port int32
}

// Endpoint is one instance behind a Service.
type Endpoint struct {
	// Hostname is the instance ID, a lowercase DNS label.
	Hostname string
	// Addr is the address the instance is reached at; under host networking several
	// instances share their node's address.
	Addr netip.Addr
	// Ready says whether the instance passes its readiness checks; only ready endpoints
	// are answered.
	Ready bool
}

// Snapshot is an immutable index of the cluster domain's records. Build one with
// NewSnapshot and hand it to Server.Swap; it is safe for concurrent use.
type Snapshot struct {
	domain    string // canonical: lowercase, fully qualified
	dotDomain string // "." + domain, for suffix tests
	serial    uint32
	names     map[string]*node  // canonical name → node, for every name in the zone
	reverse   map[string]string // canonical reverse name → canonical PTR target
}

// node is one name that exists in the zone. A node with no data is an empty non-terminal
// (or a Service without ready endpoints): it answers NODATA, not NXDOMAIN.
type node struct {
	a, aaaa []net.IP // distinct, sorted; shared read-only by every answer
	srv     []srvTarget
	apex    bool
	// cname is the canonical target of an ExternalName Service's name; such a node has no
	// other data.
	cname string
}

// maxCNAMEChain bounds how many in-cluster aliases an answer follows, as CoreDNS does (8).
const maxCNAMEChain = 8

type srvTarget struct {
	target string // canonical name; its addresses go in the additional section
	port   uint16
}

// NewSnapshot validates services and indexes the ready endpoints for domain (for example
// "cluster.local"). The result does not depend on the order of services or endpoints.
func NewSnapshot(domain string, services []Service) (*Snapshot, error) {
	domain = dns.CanonicalName(domain)
	if err := checkDomain(domain); err != nil {
		return nil, err
	}
	s := &Snapshot{
		domain:    domain,
		dotDomain: "." + domain,
		names:     map[string]*node{domain: {apex: true}},
		reverse:   map[string]string{},
	}
	s.addName(nsName(domain))

	sorted := slices.Clone(services)
	slices.SortFunc(sorted, func(a, b Service) int {
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})
	hash := fnv.New32a()
	for i, svc := range sorted {
		if err := checkService(svc); err != nil {
			return nil, err
		}
		if i > 0 && svc.Namespace == sorted[i-1].Namespace && svc.Name == sorted[i-1].Name {
			return nil, fmt.Errorf("dns: service %s/%s: %w: listed twice", svc.Namespace, svc.Name, ErrInvalidService)
		}
		s.addService(svc)
		fmt.Fprintf(hash, "%s/%s %t %v %v %v %s\n", svc.Namespace, svc.Name, svc.Headless, svc.VIP, svc.Ports, readyAddrs(svc.Endpoints), svc.ExternalName)
	}
	s.serial = hash.Sum32()
	return s, nil
}

// Domain returns the cluster domain the snapshot answers for, fully qualified.
func (s *Snapshot) Domain() string { return s.domain }

// addService indexes one validated Service.
func (s *Snapshot) addService(svc Service) {
	if svc.ExternalName != "" {
		s.addName(svc.Name + "." + svc.Namespace + ".svc." + s.domain).cname = dns.CanonicalName(svc.ExternalName)
		return
	}
	ready := readyEndpoints(svc.Endpoints)
	vip := svc.VIP.IsValid() && !svc.Headless
	if !vip && len(ready) == 0 && svc.Headless {
		return // NXDOMAIN, as CoreDNS answers (see the package comment)
	}
	svcName := svc.Name + "." + svc.Namespace + ".svc." + s.domain
	n := s.addName(svcName)
	if vip {
		n.addAddr(svc.VIP)
		s.addReverse(svc.VIP, svcName)
	}
	for _, ep := range ready {
		if !vip {
			n.addAddr(ep.Addr)
		}
		target := svcName
		if svc.Headless {
			target = ep.Hostname + "." + svcName
			s.addName(target).addAddr(ep.Addr)
		}
		s.addReverse(ep.Addr, target)
	}

	for _, p := range svc.Ports {
		if p.Name == "" {
			continue
		}
		srv := s.addName("_" + p.Name + "._" + protocol(p) + "." + svcName)
		if !svc.Headless {
			if vip || len(ready) > 0 {
				srv.srv = []srvTarget{{target: svcName, port: uint16(p.Port)}}
			}
			continue
		}
		for i, ep := range ready {
			if i > 0 && ep.Hostname == ready[i-1].Hostname {
				continue // one instance briefly running twice: one target, both addresses
			}
			srv.srv = append(srv.srv, srvTarget{target: ep.Hostname + "." + svcName, port: uint16(p.Port)})
		}
	}
}

// addName returns the node for name, creating it and its empty non-terminal ancestors.
func (s *Snapshot) addName(name string) *node {
	if n, ok := s.names[name]; ok {
		return n
	}
	n := &node{}
	s.names[name] = n
	for parent := name; parent != s.domain; {
		_, parent, _ = strings.Cut(parent, ".")
		if _, ok := s.names[parent]; ok {
			break
		}
		s.names[parent] = &node{}
	}
	return n
}

// addReverse records target for addr's PTR name, keeping the first name in order so the
// answer does not depend on input order.
func (s *Snapshot) addReverse(addr netip.Addr, target string) {
	name, err := dns.ReverseAddr(addr.String())
	if err != nil {
		return // cannot happen for a valid address
	}
	if old, ok := s.reverse[name]; !ok || target < old {
		s.reverse[name] = target
	}
}

// addAddr adds addr to the node's A or AAAA set, keeping it sorted and free of duplicates.
func (n *node) addAddr(addr netip.Addr) {
	set := &n.aaaa
	if addr.Is4() {
		set = &n.a
	}
	ip := net.IP(addr.AsSlice())
	i, found := slices.BinarySearchFunc(*set, ip, func(a, b net.IP) int { return cmp.Compare(string(a), string(b)) })
	if !found {
		*set = slices.Insert(*set, i, ip)
	}
}

// readyEndpoints returns the ready endpoints with canonical addresses, sorted by hostname
// then address.
func readyEndpoints(eps []Endpoint) []Endpoint {
	var ready []Endpoint
	for _, ep := range eps {
		if ep.Ready {
			ep.Addr = ep.Addr.Unmap().WithZone("")
			ready = append(ready, ep)
		}
	}
	slices.SortFunc(ready, func(a, b Endpoint) int {
		return cmp.Or(strings.Compare(a.Hostname, b.Hostname), a.Addr.Compare(b.Addr))
	})
	return ready
}

// readyAddrs is the content of the ready endpoints, for the SOA serial.
func readyAddrs(eps []Endpoint) []string {
	var out []string
	for _, ep := range readyEndpoints(eps) {
		out = append(out, ep.Hostname+"="+ep.Addr.String())
	}
	return out
}

func protocol(p Port) string {
	if p.Protocol == "" {
		return "tcp"
	}
	return strings.ToLower(p.Protocol)
}

// nsName is the name the NS record points at, as CoreDNS's kubernetes plugin names it.
func nsName(domain string) string { return "ns.dns." + domain }

func checkDomain(domain string) error {
	if domain == "." {
		return fmt.Errorf("dns: domain: %w: the root cannot be the cluster domain", ErrInvalidConfig)
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(domain, "."), ".") {
		if !isLabel(label) {
			return fmt.Errorf("dns: domain %q: %w: %q is not a lowercase DNS label", domain, ErrInvalidConfig, label)
		}
	}
	return nil
}

func checkService(svc Service) error {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("dns: service %s/%s: %w: %s", svc.Namespace, svc.Name, ErrInvalidService, fmt.Sprintf(format, args...))
	}
	if !isLabel(svc.Namespace) || !isLabel(svc.Name) {
		return invalid("namespace and name must be lowercase DNS labels")
	}
	seen := map[string]bool{}
	for _, p := range svc.Ports {
		switch {
		case p.Name != "" && !isLabel(p.Name):
			return invalid("port name %q is not a lowercase DNS label", p.Name)
		case p.Name != "" && seen[p.Name]:
			return invalid("port name %q used twice", p.Name)
		case p.Port < 1 || p.Port > 65535:
			return invalid("port %q: number %d out of range", p.Name, p.Port)
		}
		switch protocol(p) {
		case "tcp", "udp", "sctp":
		default:
			return invalid("port %q: protocol %q is not TCP, UDP or SCTP", p.Name, p.Protocol)
		}
		seen[p.Name] = true
	}
	if svc.VIP.IsValid() && svc.Headless {
		return invalid("a headless Service has no virtual IP")
	}
	if svc.ExternalName != "" {
		if _, ok := dns.IsDomainName(svc.ExternalName); !ok || len(dns.CanonicalName(svc.ExternalName)) > 254 {
			return invalid("external name %q is not a domain name", svc.ExternalName)
		}
		if svc.VIP.IsValid() || svc.Headless || len(svc.Ports) > 0 || len(svc.Endpoints) > 0 {
			return invalid("an ExternalName Service has no virtual IP, ports or endpoints")
		}
	}
	for _, ep := range svc.Endpoints {
		if !isLabel(ep.Hostname) {
			return invalid("endpoint hostname %q is not a lowercase DNS label", ep.Hostname)
		}
		if !ep.Addr.IsValid() {
			return invalid("endpoint %s has no address", ep.Hostname)
		}
	}
	return nil
}

// isLabel reports whether s is a lowercase RFC 1123 label: what Kubernetes accepts as a
// namespace or Service name, and what instance IDs are.
func isLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// result is the snapshot's answer to one question, before the handler adds the header,
// EDNS0 and truncation.
type result struct {
	rcode         int
	answer, extra []dns.RR
	soa           bool // put the SOA in the authority section (negative answers)
	// external is the target of the answer's last CNAME when it is outside the cluster
	// domain: the handler asks the upstreams for it, as CoreDNS does.
	external string
}

// lookup answers q from the snapshot. ours is false when the name is neither in the cluster
// domain nor a known endpoint's reverse name: somebody else's, to forward. turn picks the
// rotation of the answer order.
func (s *Snapshot) lookup(q dns.Question, ttl uint32, turn uint64) (res result, ours bool) {
	name := strings.ToLower(q.Name)
	if name != s.domain && !strings.HasSuffix(name, s.dotDomain) {
		target, ok := s.reverse[name]
		if !ok {
			return result{}, false
		}
		if q.Qclass != dns.ClassINET {
			return result{rcode: dns.RcodeRefused}, true
		}
		if q.Qtype == dns.TypePTR || q.Qtype == dns.TypeANY {
			res.answer = []dns.RR{&dns.PTR{Hdr: header(q.Name, dns.TypePTR, ttl), Ptr: target}}
		}
		return res, true // reverse zones are not ours: NODATA carries no SOA
	}
	if q.Qclass != dns.ClassINET {
		return result{rcode: dns.RcodeRefused}, true
	}
	n, ok := s.names[name]
	if !ok {
		return result{rcode: dns.RcodeNameError, soa: true}, true
	}
	owner := q.Name
	// An ExternalName Service answers a CNAME to its target for every type, then the
	// target's records when the target is in the cluster domain (following at most
	// maxCNAMEChain aliases); an outside target is left to the handler.
	for range maxCNAMEChain {
		if n.cname == "" || q.Qtype == dns.TypeCNAME {
			break
		}
		res.answer = append(res.answer, &dns.CNAME{Hdr: header(owner, dns.TypeCNAME, ttl), Target: n.cname})
		owner = n.cname
		if owner != s.domain && !strings.HasSuffix(owner, s.dotDomain) {
			res.external = owner
			return res, true
		}
		if n, ok = s.names[owner]; !ok {
			res.rcode, res.soa = dns.RcodeNameError, true
			return res, true
		}
	}
	if n.cname != "" {
		// A CNAME question, or a chain longer than the bound: the alias itself.
		res.answer = append(res.answer, &dns.CNAME{Hdr: header(owner, dns.TypeCNAME, ttl), Target: n.cname})
		return res, true
	}
	more, extra := s.records(owner, n, q.Qtype, ttl, turn)
	res.answer, res.extra = append(res.answer, more...), extra
	res.soa = len(res.answer) == 0
	return res, true
}

// records returns the answer and additional records of type qtype at n, owned by qname.
func (s *Snapshot) records(qname string, n *node, qtype uint16, ttl uint32, turn uint64) (answer, extra []dns.RR) {
	all := qtype == dns.TypeANY
	if size := len(n.a) + len(n.aaaa) + len(n.srv); size > 0 {
		answer = make([]dns.RR, 0, size) // the most any type can take; saves regrowing
	}
	if all || qtype == dns.TypeA {
		answer = appendA(answer, qname, n.a, turn, ttl)
	}
	if all || qtype == dns.TypeAAAA {
		answer = appendAAAA(answer, qname, n.aaaa, turn, ttl)
	}
	if (all || qtype == dns.TypeSRV) && len(n.srv) > 0 {
		recs := make([]dns.SRV, len(n.srv))
		weight := uint16(max(1, 100/len(n.srv)))
		for i := range recs {
			t := n.srv[rotated(i, turn, len(n.srv))]
			recs[i] = dns.SRV{Hdr: header(qname, dns.TypeSRV, ttl), Weight: weight, Port: t.port, Target: t.target}
			answer = append(answer, &recs[i])
			if tn := s.names[t.target]; tn != nil {
				extra = appendA(extra, t.target, tn.a, 0, ttl)
				extra = appendAAAA(extra, t.target, tn.aaaa, 0, ttl)
			}
		}
	}
	if n.apex && (all || qtype == dns.TypeSOA) {
		answer = append(answer, s.soa(qname, ttl))
	}
	if n.apex && (all || qtype == dns.TypeNS) {
		answer = append(answer, &dns.NS{Hdr: header(qname, dns.TypeNS, ttl), Ns: nsName(s.domain)})
	}
	return answer, extra
}

// soa is the zone's SOA record. The serial is a hash of the snapshot's content: every node
// builds the same serial from the same services, and nothing transfers the zone.
func (s *Snapshot) soa(owner string, ttl uint32) *dns.SOA {
	return &dns.SOA{
		Hdr:     header(owner, dns.TypeSOA, ttl),
		Ns:      nsName(s.domain),
		Mbox:    "hostmaster." + s.domain,
		Serial:  s.serial,
		Refresh: 7200,
		Retry:   1800,
		Expire:  86400,
		Minttl:  ttl, // negative answers are cached no longer than positive ones
	}
}

// appendA appends one A record per address, rotated by turn; the records share one
// allocation.
func appendA(rrs []dns.RR, owner string, ips []net.IP, turn uint64, ttl uint32) []dns.RR {
	recs := make([]dns.A, len(ips))
	for i := range recs {
		recs[i] = dns.A{Hdr: header(owner, dns.TypeA, ttl), A: ips[rotated(i, turn, len(ips))]}
		rrs = append(rrs, &recs[i])
	}
	return rrs
}

// appendAAAA is appendA for IPv6 addresses.
func appendAAAA(rrs []dns.RR, owner string, ips []net.IP, turn uint64, ttl uint32) []dns.RR {
	recs := make([]dns.AAAA, len(ips))
	for i := range recs {
		recs[i] = dns.AAAA{Hdr: header(owner, dns.TypeAAAA, ttl), AAAA: ips[rotated(i, turn, len(ips))]}
		rrs = append(rrs, &recs[i])
	}
	return rrs
}

func header(owner string, rrtype uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: owner, Rrtype: rrtype, Class: dns.ClassINET, Ttl: ttl}
}

// rotated is the index of the i-th of n records when the answer starts turn records in:
// crude load spreading (each query gets the next rotation) that keeps every answer a
// permutation of the same set.
func rotated(i int, turn uint64, n int) int {
	return int((uint64(i) + turn) % uint64(n))
}

// String describes the snapshot for logs: its domain, serial and number of names.
func (s *Snapshot) String() string {
	return s.domain + " serial " + strconv.FormatUint(uint64(s.serial), 10) + ", " + strconv.Itoa(len(s.names)) + " names"
}
