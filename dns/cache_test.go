package dns

import (
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// upstreamAnswer is what an upstream would return to q: rcode, the answer records and,
// for a negative answer, an SOA with TTL soaTTL and minimum soaMin (none when both are 0).
func upstreamAnswer(q *dns.Msg, rcode int, answer []dns.RR, soaTTL, soaMin uint32) *dns.Msg {
	m := new(dns.Msg).SetRcode(q, rcode)
	m.RecursionAvailable = true
	m.Answer = answer
	if soaTTL > 0 || soaMin > 0 {
		m.Ns = []dns.RR{&dns.SOA{Hdr: header("example.org.", dns.TypeSOA, soaTTL), Ns: "ns.example.org.",
			Mbox: "hostmaster.example.org.", Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: soaMin}}
	}
	return m
}

func aRecord(name, ip string, ttl uint32) dns.RR {
	return &dns.A{Hdr: header(name, dns.TypeA, ttl), A: net.ParseIP(ip)}
}

func TestCacheTTL(t *testing.T) {
	q := query("www.example.org.", dns.TypeA, 0)
	tests := []struct {
		name string
		resp *dns.Msg
		want time.Duration // 0: not cached
	}{
		{"answer: smallest TTL", upstreamAnswer(q, dns.RcodeSuccess, []dns.RR{aRecord("www.example.org.", "192.0.2.1", 300), aRecord("www.example.org.", "192.0.2.2", 60)}, 0, 0), time.Minute},
		{"answer: authority counts too", upstreamAnswer(q, dns.RcodeSuccess, []dns.RR{aRecord("www.example.org.", "192.0.2.1", 300)}, 30, 3600), 30 * time.Second},
		{"NXDOMAIN: SOA minimum", upstreamAnswer(q, dns.RcodeNameError, nil, 3600, 60), time.Minute},
		{"NODATA: SOA TTL when smaller", upstreamAnswer(q, dns.RcodeSuccess, nil, 20, 60), 20 * time.Second},
		{"NXDOMAIN without SOA", upstreamAnswer(q, dns.RcodeNameError, nil, 0, 0), 0},
		{"NODATA without SOA", upstreamAnswer(q, dns.RcodeSuccess, nil, 0, 0), 0},
		{"TTL 0", upstreamAnswer(q, dns.RcodeSuccess, []dns.RR{aRecord("www.example.org.", "192.0.2.1", 0)}, 0, 0), 0},
		{"SERVFAIL", upstreamAnswer(q, dns.RcodeServerFailure, nil, 3600, 60), 0},
		{"REFUSED", upstreamAnswer(q, dns.RcodeRefused, nil, 0, 0), 0},
		{"truncated", func() *dns.Msg {
			m := upstreamAnswer(q, dns.RcodeSuccess, []dns.RR{aRecord("www.example.org.", "192.0.2.1", 300)}, 0, 0)
			m.Truncated = true
			return m
		}(), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := cacheTTL(tt.resp)
			if ok != (tt.want > 0) || got != tt.want {
				t.Errorf("cacheTTL() = %v, %t; want %v", got, ok, tt.want)
			}
		})
	}
}

// TestCacheLifetime follows one answer through its life: fresh with its TTL counting down,
// stale with a 30 s TTL, then gone.
func TestCacheLifetime(t *testing.T) {
	c := newCache(100, 1<<20, time.Hour, 10*time.Minute)
	q := query("www.example.org.", dns.TypeA, 1232)
	t0 := time.Unix(1_000_000, 0)
	resp := upstreamAnswer(q, dns.RcodeSuccess, []dns.RR{aRecord("www.example.org.", "192.0.2.1", 60)}, 0, 0)
	resp.Authoritative = true
	resp.SetEdns0(4096, true)
	c.put(q, resp, t0)

	ask := query("WWW.Example.ORG.", dns.TypeA, 1232) // another ID, another spelling
	for _, tt := range []struct {
		at      time.Duration
		ttl     uint32 // 0: nothing served
		fresh   bool
		comment string
	}{
		{0, 60, true, "just stored"},
		{59*time.Second + time.Millisecond, 1, true, "rounded up, never 0"},
		{60 * time.Second, staleTTL, false, "expired: stale"},
		{10*time.Minute + 59*time.Second, staleTTL, false, "still within max stale"},
		{11 * time.Minute, 0, false, "past max stale"},
	} {
		m, fresh := c.get(ask, t0.Add(tt.at))
		if tt.ttl == 0 {
			if m != nil {
				t.Errorf("%s: served %v", tt.comment, m)
			}
			continue
		}
		if m == nil {
			t.Fatalf("%s: nothing served", tt.comment)
		}
		if fresh != tt.fresh || m.Answer[0].Header().Ttl != tt.ttl {
			t.Errorf("%s: fresh %t TTL %d, want %t %d", tt.comment, fresh, m.Answer[0].Header().Ttl, tt.fresh, tt.ttl)
		}
		if m.Id != ask.Id || m.Question[0] != ask.Question[0] || m.Authoritative || m.IsEdns0() != nil {
			t.Errorf("%s: reply %v does not answer %v as a cache would (ID, question, no AA, no upstream OPT)", tt.comment, m, ask)
		}
	}
}

// TestCacheKey checks that an answer is served only to the question it answered.
func TestCacheKey(t *testing.T) {
	c := newCache(100, 1<<20, time.Hour, time.Hour)
	now := time.Unix(1_000_000, 0)
	q := query("www.example.org.", dns.TypeA, 1232) // DO set
	c.put(q, upstreamAnswer(q, dns.RcodeSuccess, []dns.RR{aRecord("www.example.org.", "192.0.2.1", 60)}, 0, 0), now)

	cd := query("www.example.org.", dns.TypeA, 1232)
	cd.CheckingDisabled = true
	chaos := query("www.example.org.", dns.TypeA, 1232)
	chaos.Question[0].Qclass = dns.ClassCHAOS
	for name, other := range map[string]*dns.Msg{
		"other type":  query("www.example.org.", dns.TypeAAAA, 1232),
		"other name":  query("mail.example.org.", dns.TypeA, 1232),
		"without DO":  query("www.example.org.", dns.TypeA, 0),
		"CD set":      cd,
		"other class": chaos,
	} {
		if m, _ := c.get(other, now); m != nil {
			t.Errorf("%s: served %v", name, m)
		}
	}
}

// TestCacheNotPoisonedByAdditional is the classic poisoning attempt (Kaminsky, and the
// bailiwick attacks before it): an answer for a name the attacker controls carries records
// for a victim name. They are replayed only with that answer, never used for the victim.
func TestCacheNotPoisonedByAdditional(t *testing.T) {
	c := newCache(100, 1<<20, time.Hour, time.Hour)
	now := time.Unix(1_000_000, 0)
	q := query("evil.example.net.", dns.TypeA, 0)
	resp := upstreamAnswer(q, dns.RcodeSuccess, []dns.RR{aRecord("evil.example.net.", "198.51.100.1", 3600)}, 0, 0)
	resp.Ns = []dns.RR{&dns.NS{Hdr: header("example.org.", dns.TypeNS, 3600), Ns: "ns.evil.example.net."}}
	resp.Extra = []dns.RR{aRecord("www.example.org.", "198.51.100.66", 3600)}
	c.put(q, resp, now)

	if m, _ := c.get(query("www.example.org.", dns.TypeA, 0), now); m != nil {
		t.Errorf("the victim name answered from another name's additional section: %v", m)
	}
	if m, _ := c.get(query("example.org.", dns.TypeNS, 0), now); m != nil {
		t.Errorf("the victim zone's NS answered from another name's authority section: %v", m)
	}
}

// TestCacheBounds fills the cache far past its limits: it stays within them, and keeps
// what was stored last.
func TestCacheBounds(t *testing.T) {
	const entries, bytes = 64, 64 * 400
	now := time.Unix(1_000_000, 0)
	for _, tt := range []struct {
		name string
		rrs  int // A records per answer: many make the byte bound bite first
	}{{"entries", 1}, {"bytes", 20}} {
		t.Run(tt.name, func(t *testing.T) {
			c := newCache(entries, bytes, time.Hour, time.Hour)
			var last *dns.Msg
			for i := range 1000 {
				q := query(fmt.Sprintf("n%d.example.org.", i), dns.TypeA, 0)
				var answer []dns.RR
				for j := range tt.rrs {
					answer = append(answer, aRecord(q.Question[0].Name, fmt.Sprintf("192.0.2.%d", j+1), uint32(60+i)))
				}
				c.put(q, upstreamAnswer(q, dns.RcodeSuccess, answer, 0, 0), now)
				last = q
			}
			n, size := 0, 0
			for i := range c.shards {
				sh := &c.shards[i]
				n += len(sh.entries)
				size += sh.bytes
				got := 0
				for _, e := range sh.entries {
					got += e.size
				}
				if got != sh.bytes {
					t.Errorf("shard %d counts %d bytes, holds %d", i, sh.bytes, got)
				}
			}
			if n > entries || size > bytes || n == 0 {
				t.Errorf("%d entries in %d bytes, want 1..%d in at most %d", n, size, entries, bytes)
			}
			if m, _ := c.get(last, now); m == nil {
				t.Error("the answer stored last was evicted")
			}
		})
	}
}

// TestCacheTooBig checks that an answer larger than a shard's share of the bytes is not
// stored rather than emptying the shard.
func TestCacheTooBig(t *testing.T) {
	c := newCache(100, 16*1024, time.Hour, time.Hour) // 1 KiB per shard
	now := time.Unix(1_000_000, 0)
	q := query("big.example.org.", dns.TypeTXT, 0)
	txt := &dns.TXT{Hdr: header("big.example.org.", dns.TypeTXT, 60), Txt: []string{string(make([]byte, 255)), string(make([]byte, 255)),
		string(make([]byte, 255)), string(make([]byte, 255)), string(make([]byte, 255))}}
	c.put(q, upstreamAnswer(q, dns.RcodeSuccess, []dns.RR{txt}, 0, 0), now)
	if m, _ := c.get(q, now); m != nil {
		t.Errorf("a %d-byte answer was stored in 1 KiB shards", m.Len())
	}
}

// FuzzCache stores whatever an upstream could send as the answer to a question and reads
// it back: no panic, and whatever is served answers the question asked, with its ID.
func FuzzCache(f *testing.F) {
	q := query("www.example.org.", dns.TypeA, 1232)
	for _, m := range []*dns.Msg{
		upstreamAnswer(q, dns.RcodeSuccess, []dns.RR{aRecord("www.example.org.", "192.0.2.1", 60)}, 0, 0),
		upstreamAnswer(q, dns.RcodeNameError, nil, 3600, 60),
	} {
		m.SetEdns0(1232, true)
		wire, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(wire)
	}
	f.Fuzz(func(t *testing.T, wire []byte) {
		resp := new(dns.Msg)
		if resp.Unpack(wire) != nil {
			return
		}
		c := newCache(10, 1<<16, time.Hour, time.Hour)
		now := time.Unix(1_000_000, 0)
		c.put(q, resp, now)
		ask := query("WWW.example.org.", dns.TypeA, 1232)
		m, _ := c.get(ask, now.Add(time.Second))
		if m == nil {
			return
		}
		if m.Id != ask.Id || !slices.Equal(m.Question, ask.Question) || m.IsEdns0() != nil {
			t.Fatalf("cached reply %v does not answer %v", m, ask)
		}
		if _, err := m.Pack(); err != nil {
			t.Fatalf("cached reply does not pack: %v", err)
		}
	})
}
