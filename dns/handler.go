package dns

import (
	"net"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// advertisedUDPSize is the EDNS0 buffer size the server announces: the DNS flag day 2020
// value, which avoids IP fragmentation on common paths.
const advertisedUDPSize = 1232

// ServeDNS answers one query: REFUSED for clients outside AllowedNets, an authoritative
// answer from the current Snapshot for the cluster domain and known endpoint addresses,
// and for everything else a fresh answer from the cache or else an upstream's answer (a
// stale one from the cache, or SERVFAIL, when none answers in time), or REFUSED without
// upstreams. It is exported so that tests can drive it with a recording
// dns.ResponseWriter; the Server's TCP listener calls it too.
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	if fw, fr := s.answer(w, r); fr != nil {
		s.forward(fw, fr)
	}
}

// answer answers r in place — from the snapshot, from the cache, or with an error rcode —
// unless a name is somebody else's and must be asked upstream: then it writes nothing,
// holds a forward slot for the client, and returns the query to forward (r, or the
// outside target of an ExternalName alias) and the writer its answer goes through. It
// never waits.
func (s *Server) answer(w dns.ResponseWriter, r *dns.Msg) (dns.ResponseWriter, *dns.Msg) {
	s.stats.queries.Add(1)
	if r.Response {
		return nil, nil // never answer an answer: that is how reflection loops start
	}
	m := new(dns.Msg)
	switch opt := r.IsEdns0(); {
	case !s.allowed(w.RemoteAddr()):
		s.stats.refused.Add(1)
		s.reply(w, r, m.SetRcode(r, dns.RcodeRefused))
		return nil, nil
	case r.Opcode != dns.OpcodeQuery:
		s.reply(w, r, m.SetRcode(r, dns.RcodeNotImplemented))
		return nil, nil
	case len(r.Question) != 1:
		s.reply(w, r, m.SetRcode(r, dns.RcodeFormatError))
		return nil, nil
	case opt != nil && opt.Version() != 0:
		s.reply(w, r, m.SetRcode(r, dns.RcodeBadVers)) // RFC 6891 6.1.3
		return nil, nil
	}

	snap := s.snapshot.Load()
	res, ours := snap.lookup(r.Question[0], s.ttl, s.turn.Add(1))
	if !ours && s.forwarder != nil {
		return s.fromCache(w, r)
	}
	if !ours {
		s.stats.refused.Add(1)
		s.reply(w, r, m.SetRcode(r, dns.RcodeRefused))
		return nil, nil
	}
	if res.external != "" && s.forwarder != nil {
		// An ExternalName alias to an outside name: CoreDNS resolves the target upstream
		// and answers the CNAME followed by the target's records, since stub resolvers
		// (glibc, musl, Go) do not chase a CNAME themselves.
		s.stats.answered.Add(1)
		target := r.Copy()
		target.Question[0].Name = res.external
		return s.fromCache(&aliasWriter{ResponseWriter: w, query: r, alias: res.answer}, target)
	}
	m.SetReply(r)
	m.Authoritative = true
	m.RecursionAvailable = s.forwarder != nil
	m.Rcode = res.rcode
	m.Answer, m.Extra = res.answer, res.extra
	if res.soa {
		m.Ns = []dns.RR{snap.soa(snap.domain, s.ttl)}
	}
	switch res.rcode {
	case dns.RcodeSuccess:
		s.stats.answered.Add(1)
	case dns.RcodeNameError:
		s.stats.nxdomain.Add(1)
	case dns.RcodeRefused:
		s.stats.refused.Add(1)
	}
	s.reply(w, r, m)
	return nil, nil
}

// fromCache answers r, a name to forward, with a fresh answer from the cache if there is
// one. Otherwise it takes a forward slot for the client and reports true; when the
// client's slots or everyone's are taken, it answers stale or SERVFAIL at once instead.
func (s *Server) fromCache(w dns.ResponseWriter, r *dns.Msg) (dns.ResponseWriter, *dns.Msg) {
	if s.cache != nil {
		if m, fresh := s.cache.get(r, time.Now()); fresh {
			s.stats.cached.Add(1)
			s.reply(w, r, m)
			return nil, nil
		}
	}
	if s.forwarder.acquire(clientIP(w.RemoteAddr())) {
		return w, r
	}
	s.stats.forwardOverCap.Add(1)
	if !s.replyStale(w, r) {
		s.replyServFail(w, r)
	}
	return nil, nil
}

// aliasWriter answers a question about an ExternalName Service with the answer to its
// outside target: the alias's CNAME records first, then the target's answer, under the
// client's own question and ID.
type aliasWriter struct {
	dns.ResponseWriter
	query *dns.Msg // the client's question
	alias []dns.RR // the CNAME chain from the question's name to the target
}

// WriteMsg writes m, the answer for the target, as the answer to the client's question.
func (w *aliasWriter) WriteMsg(m *dns.Msg) error {
	out := m.Copy() // m may be the cache's
	out.Id, out.Question = w.query.Id, w.query.Question
	out.Answer = append(append([]dns.RR{}, w.alias...), m.Answer...)
	out.Truncate(replySize(w, w.query)) // the alias made the answer longer
	return w.ResponseWriter.WriteMsg(out)
}

// rebind returns fw writing to inner in place of the writer it was made for.
func rebind(fw, inner dns.ResponseWriter) dns.ResponseWriter {
	if a, ok := fw.(*aliasWriter); ok {
		return &aliasWriter{ResponseWriter: inner, query: a.query, alias: a.alias}
	}
	return inner
}

// forward relays r to the upstreams, caches their answer and writes it. When none answers
// in time, or the one that does fails (SERVFAIL, REFUSED), it writes the cached answer
// even if expired (RFC 8767), or else SERVFAIL or the upstream's failure. Only after
// answer reported true, and it gives back the slot answer took.
func (s *Server) forward(w dns.ResponseWriter, r *dns.Msg) {
	defer s.forwarder.release(clientIP(w.RemoteAddr()))
	network := "udp"
	if !isUDP(w) {
		network = "tcp"
	}
	resp, err := s.forwarder.exchange(s.lifetime, r, network)
	if err != nil {
		s.stats.forwardFailed.Add(1)
		s.log.Debug("dns: forward failed", "name", r.Question[0].Name, "err", err)
	}
	if (err != nil || resp.Rcode == dns.RcodeServerFailure || resp.Rcode == dns.RcodeRefused) && s.replyStale(w, r) {
		return
	}
	if err != nil {
		s.replyServFail(w, r)
		return
	}
	s.stats.forwarded.Add(1)
	if s.cache != nil {
		s.cache.put(r, resp, time.Now())
	}
	s.reply(w, r, resp)
}

// replyStale writes the cached answer to r, fresh or stale, and reports whether there was
// one.
func (s *Server) replyStale(w dns.ResponseWriter, r *dns.Msg) bool {
	if s.cache == nil {
		return false
	}
	m, _ := s.cache.get(r, time.Now())
	if m == nil {
		return false
	}
	s.stats.stale.Add(1)
	s.reply(w, r, m)
	return true
}

// replyServFail tells the client that r could not be resolved now.
func (s *Server) replyServFail(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg).SetRcode(r, dns.RcodeServerFailure)
	m.RecursionAvailable = true
	s.reply(w, r, m)
}

// reply completes m for the client that sent req — EDNS0 OPT when req had one, truncation
// to the client's UDP buffer — and writes it.
func (s *Server) reply(w dns.ResponseWriter, req, m *dns.Msg) {
	if opt := req.IsEdns0(); opt != nil && m.IsEdns0() == nil { // a forwarded answer brings its upstream's OPT
		m.SetEdns0(advertisedUDPSize, opt.Do())
	}
	truncated := m.Truncated
	m.Truncate(replySize(w, req))
	if m.Truncated && !truncated {
		s.stats.truncated.Add(1)
	}
	if err := w.WriteMsg(m); err != nil {
		s.log.Debug("dns: write reply", "client", w.RemoteAddr(), "err", err)
	}
}

// replySize is the largest answer the client that sent req over w takes: its EDNS0 buffer
// or 512 bytes over UDP, 64 KiB over TCP.
func replySize(w dns.ResponseWriter, req *dns.Msg) int {
	if !isUDP(w) {
		return dns.MaxMsgSize
	}
	if opt := req.IsEdns0(); opt != nil {
		return max(int(opt.UDPSize()), dns.MinMsgSize)
	}
	return dns.MinMsgSize
}

// allowed reports whether a client at addr may use the server.
func (s *Server) allowed(addr net.Addr) bool {
	ip := clientIP(addr)
	if !ip.IsValid() {
		return false
	}
	for _, p := range s.allowedNets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// clientIP is the address of a client at addr, IPv4 unmapped and without zone; the zero
// Addr for a transport other than UDP and TCP.
func clientIP(addr net.Addr) netip.Addr {
	switch a := addr.(type) {
	case *net.UDPAddr:
		return a.AddrPort().Addr().Unmap().WithZone("")
	case *net.TCPAddr:
		return a.AddrPort().Addr().Unmap().WithZone("")
	}
	return netip.Addr{}
}

func isUDP(w dns.ResponseWriter) bool {
	_, ok := w.RemoteAddr().(*net.UDPAddr)
	return ok
}
