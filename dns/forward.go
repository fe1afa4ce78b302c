package dns

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// errMismatch is an upstream answering a different question than it was asked.
var errMismatch = errors.New("answer does not match the question")

// forwarder relays queries for names outside the cluster domain to upstream resolvers,
// and counts the forwards in flight, in all and per client, against their caps.
type forwarder struct {
	upstreams []string // "ip:port", tried in order
	timeout   time.Duration
	udp, tcp  *dns.Client

	max, perClient int
	mu             sync.Mutex         // guards the counts below, held for one map operation
	inflight       int                // forwards in flight, all clients
	clients        map[netip.Addr]int // forwards in flight per client; no zero entries
}

func newForwarder(upstreams []string, timeout time.Duration, maxInFlight, perClient int) *forwarder {
	return &forwarder{
		upstreams: upstreams,
		timeout:   timeout,
		max:       maxInFlight,
		perClient: perClient,
		clients:   map[netip.Addr]int{},
		// Timeout makes the context's deadline, not the client's 2 s default, the limit.
		udp: &dns.Client{Net: "udp", Timeout: timeout},
		tcp: &dns.Client{Net: "tcp", Timeout: timeout},
	}
}

// acquire takes a forward slot for client, or reports false when all of them, or the
// client's share, are in flight: a slow upstream must not pile up waiting queries without
// bound, and one client flooding it must not take every slot from the others. Each true
// must be matched by a release.
func (f *forwarder) acquire(client netip.Addr) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.inflight >= f.max || f.clients[client] >= f.perClient {
		return false
	}
	f.inflight++
	f.clients[client]++
	return true
}

// release gives back a slot that acquire took for client.
func (f *forwarder) release(client netip.Addr) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inflight--
	if f.clients[client]--; f.clients[client] == 0 {
		delete(f.clients, client) // the map holds only clients with forwards in flight
	}
}

// exchange asks the upstreams in order, over network ("udp" or "tcp", the client's), until
// one answers, and returns that answer with r's ID. The whole exchange takes at most the
// forward timeout: each upstream gets an equal share of what is left, so one that never
// answers cannot starve the next. The caller holds a slot from acquire.
func (f *forwarder) exchange(ctx context.Context, r *dns.Msg, network string) (*dns.Msg, error) {
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
	// The client checked the ID; what is cached must also answer exactly what was asked.
	if !resp.Response || len(resp.Question) != 1 || resp.Question[0].Qtype != q.Question[0].Qtype ||
		resp.Question[0].Qclass != q.Question[0].Qclass || !strings.EqualFold(resp.Question[0].Name, q.Question[0].Name) {
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
