package dns

import (
	"hash/maphash"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// staleTTL is the TTL of a stale answer, RFC 8767's recommended 30 seconds: short enough
// that clients ask again soon, when the upstream may be back.
const staleTTL = 30

// cacheShards spreads the cache over this many locks, so that readers on different CPUs
// and the forwards storing answers seldom touch the same one.
const cacheShards = 16

// entryOverhead approximates what an entry costs beyond its packed answer and name: the
// map slot, the entry struct and the slice headers. It makes the byte bound honest for
// many small answers.
const entryOverhead = 128

// cache keeps upstream answers for names outside the cluster domain, after RFC 2308 and
// RFC 8767: an answer is fresh for its smallest TTL (a negative one for its SOA's minimum),
// and for MaxStale after that it is still served, with a 30 s TTL, when no upstream answers.
// It is bounded in entries and bytes. The model is CoreDNS's plugin/cache over
// plugin/pkg/cache: a sharded map whose lock is held for one map operation, evicting
// sampled entries when full.
//
// It cannot be poisoned into answering a question with records asked for another: an
// entry is the whole upstream answer to one question (name, type, class and the DO and CD
// bits), stored only when that answer echoed the question and the forward's ID, and served
// only for that question. Additional records naming other hosts are replayed with it, as
// the client would have received them from the upstream, never used to answer for those
// hosts. Cluster names are never stored: the snapshot answers them before the cache is
// asked.
type cache struct {
	seed     maphash.Seed
	maxTTL   time.Duration // the longest an answer stays fresh, whatever its TTL
	maxStale time.Duration // how long past its TTL an answer may still be served stale
	shards   [cacheShards]cacheShard
}

// cacheShard is one lock's share of the cache, bounded by its share of the limits.
type cacheShard struct {
	mu                   sync.RWMutex
	entries              map[cacheKey]*cacheEntry
	bytes                int
	maxEntries, maxBytes int
}

// cacheKey is the question an answer was given to. Names are lower case: DNS names match
// case-insensitively.
type cacheKey struct {
	name          string
	qtype, qclass uint16
	do, cd        bool // DNSSEC records wanted, validation off: both change the answer
}

// cacheEntry is one stored answer. It never changes once stored.
type cacheEntry struct {
	wire   []byte        // the answer packed, without its OPT record
	stored time.Time     // when the upstream gave it
	ttl    time.Duration // fresh until stored+ttl
	size   int           // what it counts against the byte bound
}

// newCache returns a cache of at most maxEntries answers taking about maxBytes, or nil
// when maxEntries is 0: caching off.
func newCache(maxEntries, maxBytes int, maxTTL, maxStale time.Duration) *cache {
	if maxEntries == 0 {
		return nil
	}
	c := &cache{seed: maphash.MakeSeed(), maxTTL: maxTTL, maxStale: maxStale}
	for i := range c.shards {
		c.shards[i] = cacheShard{
			entries:    map[cacheKey]*cacheEntry{},
			maxEntries: max(1, maxEntries/cacheShards),
			maxBytes:   max(1, maxBytes/cacheShards),
		}
	}
	return c
}

// keyOf is the cache key of r's question; r has exactly one.
func keyOf(r *dns.Msg) cacheKey {
	q := r.Question[0]
	k := cacheKey{name: strings.ToLower(q.Name), qtype: q.Qtype, qclass: q.Qclass, cd: r.CheckingDisabled}
	if opt := r.IsEdns0(); opt != nil {
		k.do = opt.Do()
	}
	return k
}

func (c *cache) shard(k cacheKey) *cacheShard {
	return &c.shards[maphash.Comparable(c.seed, k)%cacheShards]
}

// get returns the stored answer to r's question as a reply to r, and whether it is still
// fresh at now. A fresh answer's TTLs count down from when it was stored; a stale one's are
// staleTTL. It returns nil when nothing usable is stored: never stored, evicted, or past
// the stale window.
func (c *cache) get(r *dns.Msg, now time.Time) (m *dns.Msg, fresh bool) {
	k := keyOf(r)
	sh := c.shard(k)
	sh.mu.RLock()
	e := sh.entries[k]
	sh.mu.RUnlock()
	if e == nil {
		return nil, false
	}
	age := now.Sub(e.stored)
	ttl := uint32(staleTTL)
	switch {
	case age < e.ttl:
		ttl = uint32((e.ttl - age + time.Second - 1) / time.Second) // rounded up: 0 means "do not cache"
		fresh = true
	case age >= e.ttl+c.maxStale:
		return nil, false
	}
	m = new(dns.Msg)
	if m.Unpack(e.wire) != nil {
		return nil, false // cannot happen: put packed it
	}
	m.Id = r.Id
	m.Question = r.Question // the asker's spelling of the name, as an upstream would echo it
	m.RecursionDesired = r.RecursionDesired
	m.Authoritative = false // a cache is nobody's authority (RFC 1035 4.1.1)
	for _, section := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range section {
			if rr.Header().Rrtype != dns.TypeOPT { // an OPT's TTL holds flags, not a TTL
				rr.Header().Ttl = ttl
			}
		}
	}
	return m, fresh
}

// put stores resp, an upstream's answer to r, when it may be cached: NOERROR with
// answers, or a negative answer (NXDOMAIN, NODATA) carrying the zone's SOA; not truncated;
// with a TTL above zero. The forwarder has checked that resp answers r's question and ID.
func (c *cache) put(r, resp *dns.Msg, now time.Time) {
	ttl, ok := cacheTTL(resp)
	if !ok {
		return
	}
	stored := *resp // a shallow copy, to pack without the OPT: its options were the client's
	stored.Id = 0
	stored.Extra = make([]dns.RR, 0, len(resp.Extra))
	for _, rr := range resp.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			stored.Extra = append(stored.Extra, rr)
		}
	}
	stored.Compress = true
	wire, err := stored.Pack()
	if err != nil {
		return
	}
	k := keyOf(r)
	e := &cacheEntry{wire: wire, stored: now, ttl: min(ttl, c.maxTTL)}
	e.size = len(wire) + len(k.name) + entryOverhead

	sh := c.shard(k)
	if e.size > sh.maxBytes {
		return
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if old := sh.entries[k]; old != nil {
		sh.bytes -= old.size
	}
	sh.entries[k] = e
	sh.bytes += e.size
	for len(sh.entries) > sh.maxEntries || sh.bytes > sh.maxBytes {
		sh.evictOne(k)
	}
}

// evictOne removes, of a few entries sampled from the shard (Go's map iteration starts at
// a random place), the one that expires first (and so leaves its stale window first), but
// never keep: the entry just stored. Sampling approximates least-recently-stored without a list to maintain.
func (sh *cacheShard) evictOne(keep cacheKey) {
	const samples = 4
	var victim cacheKey
	var victimEnd time.Time
	found, n := false, 0
	for k, e := range sh.entries {
		if k == keep {
			continue
		}
		if end := e.stored.Add(e.ttl); !found || end.Before(victimEnd) {
			victim, victimEnd, found = k, end, true
		}
		if n++; n == samples {
			break
		}
	}
	if !found { // only keep is left; it fits alone, as put checked
		return
	}
	sh.bytes -= sh.entries[victim].size
	delete(sh.entries, victim)
}

// cacheTTL is how long resp stays fresh: the smallest TTL of its records for an answer
// (RFC 2181 5.2 asks the same of every record of an RRset), and for a negative answer the
// smaller of its SOA's TTL and minimum field (RFC 2308 5). ok is false for what must not
// be cached: truncated or failed answers, negative answers without an SOA (RFC 2308 5),
// and TTL 0, which means "use only for this transaction".
func cacheTTL(resp *dns.Msg) (ttl time.Duration, ok bool) {
	if resp.Truncated || (resp.Rcode != dns.RcodeSuccess && resp.Rcode != dns.RcodeNameError) {
		return 0, false
	}
	var least uint32
	if resp.Rcode == dns.RcodeSuccess && len(resp.Answer) > 0 {
		least = ^uint32(0)
		for _, section := range [][]dns.RR{resp.Answer, resp.Ns, resp.Extra} {
			for _, rr := range section {
				if rr.Header().Rrtype != dns.TypeOPT {
					least = min(least, rr.Header().Ttl)
				}
			}
		}
	} else {
		soa := negativeSOA(resp)
		if soa == nil {
			return 0, false
		}
		least = min(soa.Hdr.Ttl, soa.Minttl)
	}
	return time.Duration(least) * time.Second, least > 0
}

// negativeSOA is the SOA in a negative answer's authority section, or nil.
func negativeSOA(resp *dns.Msg) *dns.SOA {
	for _, rr := range resp.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			return soa
		}
	}
	return nil
}
