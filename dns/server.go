package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// ErrInvalidConfig reports a Config that Validate rejects.
var ErrInvalidConfig = errors.New("invalid config")

// ErrServerClosed is returned by Serve on a Server that was already closed or served.
var ErrServerClosed = errors.New("dns: server closed")

// Config is the DNS server's configuration. Start from DefaultConfig.
type Config struct {
	// Addr is the host:port to listen on, UDP and TCP both. The host is an IP literal, or
	// empty for every address; port 0 picks a free port (Server.Addr tells which).
	Addr string
	// Domain is the cluster domain answered from snapshots, e.g. "cluster.local".
	Domain string
	// TTL is the time to live of every answer, and of negative answers (the SOA minimum),
	// in whole seconds. Short, because instances come and go.
	TTL time.Duration
	// Upstreams are the resolvers for names outside Domain, "ip" or "ip:port" (port 53 by
	// default), tried in order; ParseResolvConf reads them from /etc/resolv.conf. Empty:
	// such names are REFUSED. An upstream that is this server itself is skipped.
	Upstreams []string
	// ForwardTimeout bounds one forwarded query, all upstreams included; then SERVFAIL.
	ForwardTimeout time.Duration
	// MaxConcurrentForwards caps the forwarded queries in flight; a query over the cap gets
	// a stale answer from the cache, or SERVFAIL, at once rather than waiting.
	MaxConcurrentForwards int
	// MaxForwardsPerClient caps the forwarded queries in flight from one client address,
	// so that one container flooding a slow upstream cannot take every forward from the
	// others; over it the same as over MaxConcurrentForwards.
	MaxForwardsPerClient int
	// CacheEntries and CacheBytes bound the cache of upstream answers: at most that many
	// (but at least 16: one per shard), taking about that many bytes. CacheEntries 0 turns
	// caching off.
	CacheEntries int
	CacheBytes   int
	// CacheMaxTTL caps how long an upstream answer is served from the cache without asking
	// again, whatever its TTL. Negative answers are kept for their SOA minimum (RFC 2308).
	CacheMaxTTL time.Duration
	// MaxStale is how long past its TTL a cached answer is still served, with a 30 s TTL,
	// when no upstream answers in time (RFC 8767's maximum stale timer). 0: never.
	MaxStale time.Duration
	// AllowedNets are the client networks served; everyone else gets REFUSED, so the
	// server is never an open resolver.
	AllowedNets []netip.Prefix
	// Logger receives listener events and, at debug level, forwarding failures. Nil
	// discards them.
	Logger *slog.Logger
}

// DefaultConfig returns the defaults: loopback port 53, cluster.local, 5 s TTL (as CoreDNS's
// kubernetes plugin), no upstreams, a 2 s forward timeout, at most 1000 forwards in flight
// and 50 per client, a cache of 10,000 answers in about 8 MiB kept fresh at most an hour
// and served stale for a day (RFC 8767 suggests one to three), and loopback plus private
// (RFC 1918, RFC 4193) clients.
func DefaultConfig() Config {
	return Config{
		Addr:                  "127.0.0.1:53",
		Domain:                "cluster.local",
		TTL:                   5 * time.Second,
		ForwardTimeout:        2 * time.Second,
		MaxConcurrentForwards: 1000,
		MaxForwardsPerClient:  50,
		CacheEntries:          10_000,
		CacheBytes:            8 << 20,
		CacheMaxTTL:           time.Hour,
		MaxStale:              24 * time.Hour,
		AllowedNets: []netip.Prefix{
			netip.MustParsePrefix("127.0.0.0/8"),
			netip.MustParsePrefix("10.0.0.0/8"),
			netip.MustParsePrefix("172.16.0.0/12"),
			netip.MustParsePrefix("192.168.0.0/16"),
			netip.MustParsePrefix("::1/128"),
			netip.MustParsePrefix("fc00::/7"),
		},
		Logger: slog.Default(),
	}
}

// Validate reports the first problem with c, wrapping ErrInvalidConfig.
func (c Config) Validate() error {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("dns: config: %w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return invalid("addr %q: %v", c.Addr, err)
	}
	if _, err := netip.ParseAddr(host); host != "" && err != nil {
		return invalid("addr %q: host must be an IP address or empty", c.Addr)
	}
	if err := checkDomain(dns.CanonicalName(c.Domain)); err != nil {
		return err
	}
	if c.TTL < 0 || c.TTL > 24*time.Hour {
		return invalid("ttl %v not between 0 and 24h", c.TTL)
	}
	for _, u := range c.Upstreams {
		if _, err := parseUpstream(u); err != nil {
			return invalid("%v", err)
		}
	}
	if c.ForwardTimeout <= 0 {
		return invalid("forward timeout %v must be positive", c.ForwardTimeout)
	}
	if c.MaxConcurrentForwards <= 0 {
		return invalid("max concurrent forwards %d must be positive", c.MaxConcurrentForwards)
	}
	if c.MaxForwardsPerClient <= 0 {
		return invalid("max forwards per client %d must be positive", c.MaxForwardsPerClient)
	}
	if c.CacheEntries < 0 || c.CacheBytes < 0 || (c.CacheEntries > 0 && c.CacheBytes == 0) {
		return invalid("cache of %d entries in %d bytes: both must be positive, or entries 0 for no cache", c.CacheEntries, c.CacheBytes)
	}
	if c.CacheMaxTTL <= 0 || c.MaxStale < 0 {
		return invalid("cache max TTL %v must be positive and max stale %v not negative", c.CacheMaxTTL, c.MaxStale)
	}
	if len(c.AllowedNets) == 0 {
		return invalid("no allowed nets: every client would be refused")
	}
	for _, p := range c.AllowedNets {
		if !p.IsValid() {
			return invalid("allowed net %v is not a valid prefix", p)
		}
	}
	return nil
}

// Server answers DNS over UDP and TCP on one address. Its handler reads the Snapshot last
// given to Swap; nothing else in it changes after New but counters.
type Server struct {
	ttl         uint32
	allowedNets []netip.Prefix
	forwarder   *forwarder // nil without upstreams
	cache       *cache     // upstream answers; nil without upstreams or with caching off
	empty       *Snapshot  // what Swap(nil) serves
	log         *slog.Logger

	snapshot atomic.Pointer[Snapshot]
	turn     atomic.Uint64 // answer rotation, one step per query
	stats    counters

	udp *net.UDPConn
	tcp net.Listener
	// lifetime ends when the server closes; it aborts forwards in flight, which would
	// otherwise hold up shutdown until their timeout.
	lifetime  context.Context
	end       context.CancelFunc
	closeOnce sync.Once
	served    atomic.Bool
}

// New validates cfg, binds its address (UDP and TCP on the same port) and returns a Server
// answering from an empty snapshot until the first Swap. Call Serve to answer queries, or
// Close to release the address without serving.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	empty, err := NewSnapshot(cfg.Domain, nil)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	udp, tcp, err := listen(cfg.Addr)
	if err != nil {
		return nil, err
	}
	s := &Server{
		ttl:         uint32(cfg.TTL / time.Second),
		allowedNets: cfg.AllowedNets,
		empty:       empty,
		log:         log,
		udp:         udp,
		tcp:         tcp,
	}
	s.lifetime, s.end = context.WithCancel(context.Background())
	s.snapshot.Store(empty)

	bound := udp.LocalAddr().(*net.UDPAddr).AddrPort()
	local := localAddrs(bound)
	var upstreams []string
	for _, u := range cfg.Upstreams {
		ap, _ := parseUpstream(u) // validated
		if isSelf(ap, bound, local) {
			log.Warn("dns: skipping upstream that is this server", "upstream", u, "listen", bound)
			continue
		}
		upstreams = append(upstreams, ap.String())
	}
	if len(upstreams) > 0 {
		s.forwarder = newForwarder(upstreams, cfg.ForwardTimeout, cfg.MaxConcurrentForwards, cfg.MaxForwardsPerClient)
		s.cache = newCache(cfg.CacheEntries, cfg.CacheBytes, cfg.CacheMaxTTL, cfg.MaxStale)
	}
	return s, nil
}

// listen binds UDP and TCP on the same address. With port 0 the kernel picks a UDP port
// that TCP may already use elsewhere, so a few ports are tried.
func listen(addr string) (*net.UDPConn, net.Listener, error) {
	_, port, _ := net.SplitHostPort(addr)
	for attempt := 1; ; attempt++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("dns: listen udp %s: %w", addr, err)
		}
		udp := pc.(*net.UDPConn) // what ListenPacket("udp") always returns
		tcp, err := net.Listen("tcp", udp.LocalAddr().String())
		if err == nil {
			return udp, tcp, nil
		}
		udp.Close()
		if port != "0" || attempt == 5 {
			return nil, nil, fmt.Errorf("dns: listen tcp %s: %w", udp.LocalAddr(), err)
		}
	}
}

// localAddrs lists this host's interface addresses when bound listens on all of them;
// the loop guard needs them only then.
func localAddrs(bound netip.AddrPort) []netip.Addr {
	if !bound.Addr().IsUnspecified() {
		return nil
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr().Unmap())
		}
	}
	return out
}

// Addr returns the address the server listens on, with the port the kernel picked when
// Config.Addr asked for port 0.
func (s *Server) Addr() string { return s.udp.LocalAddr().String() }

// Swap makes snap the snapshot every following query is answered from; queries in flight
// finish on the one they loaded. Nil serves an empty zone. The snapshot's domain is the
// zone answered, so build it with Config.Domain.
func (s *Server) Swap(snap *Snapshot) {
	if snap == nil {
		snap = s.empty
	}
	s.snapshot.Store(snap)
}

// Serve answers queries on the bound address until ctx ends, then stops the listeners,
// aborts forwards in flight, waits for the handlers and returns nil. It returns an error
// when a listener fails, and ErrServerClosed when called twice or after Close.
func (s *Server) Serve(ctx context.Context) error {
	if s.served.Swap(true) || s.lifetime.Err() != nil {
		return ErrServerClosed
	}
	defer s.Close()
	udp := s.startUDP()
	tcp := startMiekg(&dns.Server{Listener: s.tcp, Handler: s})
	s.log.Info("dns: serving", "addr", s.Addr(), "domain", s.snapshot.Load().domain, "forwarding", s.forwarder != nil)

	var err error
	select {
	case <-ctx.Done():
	case <-udp.done:
		err = fmt.Errorf("dns: serve udp %s: %w", s.Addr(), udp.err)
	case <-tcp.done:
		err = fmt.Errorf("dns: serve tcp %s: %w", s.Addr(), tcp.err)
	}
	s.end() // before the shutdown, which waits for handlers: forwards must not hold it up
	udp.stop()
	tcp.stop()
	return err
}

// startUDP serves UDP with serveUDP when the socket is bound to one address, and with
// miekg/dns's server otherwise (see serveUDP).
func (s *Server) startUDP() *running {
	conn := s.udp
	if conn.LocalAddr().(*net.UDPAddr).IP.IsUnspecified() {
		// A large read buffer: queries with EDNS0 options (cookies, padding) exceed 512 bytes.
		return startMiekg(&dns.Server{PacketConn: conn, Handler: s, UDPSize: dns.DefaultMsgSize})
	}
	r := &running{done: make(chan struct{})}
	// A read deadline in the past wakes every reader; the socket stays open for the
	// answers of forwards that are finishing.
	r.shutdown = func() { conn.SetReadDeadline(time.Unix(1, 0)) }
	go func() {
		defer close(r.done)
		r.err = s.serveUDP(conn)
	}()
	return r
}

// Close releases the listeners and aborts forwards in flight. Serve calls it on return;
// call it yourself only for a Server that is never served. It is safe to call twice.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.end()
		err = errors.Join(s.udp.Close(), s.tcp.Close())
	})
	return err
}

// running is one serving goroutine, started by startUDP or startMiekg.
type running struct {
	done     chan struct{} // closed when the goroutine returns; err is set then
	err      error
	shutdown func() // makes the goroutine return
}

// stop makes the goroutine return and waits for it and the handlers it started.
func (r *running) stop() {
	r.shutdown()
	<-r.done
}

// startMiekg runs a miekg/dns server. miekg/dns refuses to shut down a server that has not
// started yet, so its shutdown waits for the start (or for a failure to start) first.
func startMiekg(srv *dns.Server) *running {
	r := &running{done: make(chan struct{})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	r.shutdown = func() {
		select {
		case <-started:
			_ = srv.Shutdown() // its only errors: not started (excluded) and a context we do not pass
		case <-r.done:
		}
	}
	go func() {
		defer close(r.done)
		r.err = srv.ActivateAndServe()
	}()
	return r
}

// Stats counts what a Server did since New. Every field only grows; the agent exports them
// as Prometheus counters.
type Stats struct {
	Queries        uint64 // every query received, whatever became of it
	Answered       uint64 // NOERROR answers from the snapshot, NODATA included
	NXDomain       uint64 // NXDOMAIN answers from the snapshot
	Refused        uint64 // clients outside AllowedNets, and names nobody here serves
	Forwarded      uint64 // answers relayed from an upstream
	Cached         uint64 // fresh answers from the cache of upstream answers
	Stale          uint64 // expired answers from the cache, served because no upstream answered
	ForwardFailed  uint64 // every upstream failed or timed out: a stale answer or SERVFAIL
	ForwardOverCap uint64 // MaxConcurrentForwards or MaxForwardsPerClient in flight: a stale answer or SERVFAIL at once
	Truncated      uint64 // UDP answers cut to the client's buffer, TC set
}

type counters struct {
	queries, answered, nxdomain, refused, forwarded, cached, stale, forwardFailed, forwardOverCap, truncated atomic.Uint64
}

// Stats returns the counters so far.
func (s *Server) Stats() Stats {
	c := &s.stats
	return Stats{
		Queries:        c.queries.Load(),
		Answered:       c.answered.Load(),
		NXDomain:       c.nxdomain.Load(),
		Refused:        c.refused.Load(),
		Forwarded:      c.forwarded.Load(),
		Cached:         c.cached.Load(),
		Stale:          c.stale.Load(),
		ForwardFailed:  c.forwardFailed.Load(),
		ForwardOverCap: c.forwardOverCap.Load(),
		Truncated:      c.truncated.Load(),
	}
}
