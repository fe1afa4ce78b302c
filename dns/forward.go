package dns

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// errOverCap is the forwarder refusing a query because MaxConcurrentForwards are in flight.
var errOverCap = errors.New("too many forwards in flight")

// errMismatch is an upstream answering a different question than it was asked.
var errMismatch = errors.New("answer does not match the question")

// forwarder relays queries for names outside the cluster domain to upstream resolvers.
// It holds no per-query state but a count of forwards in flight.
type forwarder struct {
	upstreams []string // "ip:port", tried in order
	timeout   time.Duration
	max       int64
	inflight  atomic.Int64
	udp, tcp  *dns.Client
}

func newForwarder(upstreams []string, timeout time.Duration, maxInFlight int) *forwarder {
	return &forwarder{
		upstreams: upstreams,
		timeout:   timeout,
		max:       int64(maxInFlight),
		// Timeout makes the context's deadline, not the client's 2 s default, the limit.
		udp: &dns.Client{Net: "udp", Timeout: timeout},
		tcp: &dns.Client{Net: "tcp", Timeout: timeout},
	}
}

// exchange asks the upstreams in order, over network ("udp" or "tcp", the client's), until
// one answers, and returns that answer with r's ID. The whole exchange takes at most the
// forward timeout: each upstream gets an equal share of what is left, so one that never
// answers cannot starve the next. Over the in-flight cap it fails at once with errOverCap:
// a slow upstream must not pile up waiting queries without bound.
func (f *forwarder) exchange(ctx context.Context, r *dns.Msg, network string) (*dns.Msg, error) {
	if f.inflight.Add(1) > f.max {
		f.inflight.Add(-1)
		return nil, errOverCap
	}
	defer f.inflight.Add(-1)

	client := f.udp
	if network == "tcp" {
		client = f.tcp
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()

	// A fresh ID per forward, so that an off-path spoofer cannot reuse the client's. The
	// shallow copy shares r's sections, which packing only reads.
	q := *r
	q.Id = dns.Id()
	var errs []error
	for i, upstream := range f.upstreams {
		share := time.Until(deadline) / time.Duration(len(f.upstreams)-i)
		resp, err := f.try(ctx, client, &q, upstream, share)
		if err == nil {
			resp.Id = r.Id
			return resp, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", upstream, err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("dns: forward %s: %w", r.Question[0].Name, errors.Join(errs...))
}

// try sends q to one upstream and waits at most timeout for its answer.
func (f *forwarder) try(ctx context.Context, client *dns.Client, q *dns.Msg, upstream string, timeout time.Duration) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := client.DialContext(ctx, upstream)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	// The exchange obeys the context's deadline but not its cancellation; closing the
	// connection makes a server shutdown end it at once.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	resp, _, err := client.ExchangeWithConnContext(ctx, q, conn)
	if err != nil {
		return nil, err
	}
	if len(resp.Question) != 1 || resp.Question[0].Qtype != q.Question[0].Qtype ||
		!strings.EqualFold(resp.Question[0].Name, q.Question[0].Name) {
		return nil, errMismatch
	}
	return resp, nil
}

// parseUpstream turns "ip" or "ip:port" into an address; the port defaults to 53. Host
// names are refused: resolving them would need the resolver being configured.
func parseUpstream(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	addr, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("upstream %q is not an IP address or IP:port", s)
	}
	return netip.AddrPortFrom(addr, 53), nil
}

// isSelf reports whether upstream is the server itself, listening on bound: the same
// address or the unspecified one (a connection to 0.0.0.0 reaches this host) on the same
// port, or — when bound to every address — a loopback or local address on that port.
// Forwarding there would loop until the timeout.
func isSelf(upstream, bound netip.AddrPort, local []netip.Addr) bool {
	if upstream.Port() != bound.Port() {
		return false
	}
	ip := upstream.Addr().Unmap().WithZone("")
	listen := bound.Addr().Unmap().WithZone("")
	if ip == listen || ip.IsUnspecified() {
		return true
	}
	return listen.IsUnspecified() && (ip.IsLoopback() || slices.Contains(local, ip))
}
