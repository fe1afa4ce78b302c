package network

import (
	"cmp"
	"fmt"
	"math/bits"
	"slices"
)

// What the allocators share: a stable hash that picks where a name starts looking, a
// set of taken slots that finds the next free one a word at a time, and the kinds of
// problem an assignment reports.

// ServiceKey names a Service: its namespace and name.
type ServiceKey struct {
	Namespace, Name string
}

// String renders the key as namespace/name, as kubectl names a Service.
func (k ServiceKey) String() string { return k.Namespace + "/" + k.Name }

func compareServiceKeys(a, b ServiceKey) int {
	return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
}

// ProblemKind says why an assignment could not give what was asked.
type ProblemKind string

// Kinds of problem reported by AssignVIPs and AssignNodePorts.
const (
	// ProblemOutsideRange: the requested address or port is outside the range; another was assigned.
	ProblemOutsideRange ProblemKind = "outside-range"
	// ProblemReserved: the requested address is one the range keeps back; another was assigned.
	ProblemReserved ProblemKind = "reserved"
	// ProblemTaken: another request with a lower key asked for the same address or port
	// and keeps it; another was assigned.
	ProblemTaken ProblemKind = "taken"
	// ProblemRangeFull: every address or port of the range is assigned; nothing was.
	ProblemRangeFull ProblemKind = "range-full"
	// ProblemInvalid: the request itself is malformed (an unknown protocol, an empty key);
	// nothing was assigned.
	ProblemInvalid ProblemKind = "invalid"
	// ProblemDuplicate: the same key was requested more than once; only its first request
	// in sorted order counts.
	ProblemDuplicate ProblemKind = "duplicate"
)

// stableHash is FNV-1a over the parts, each followed by a zero byte so that ("ab", "c")
// and ("a", "bc") differ, finished with the MurmurHash3 finaliser, since FNV alone spreads
// its low bits poorly and the allocators take the hash modulo a range. It is the same on
// every node and every architecture: a node's or a Service's starting point must not
// depend on who computes it.
func stableHash(parts ...string) uint64 {
	h := uint64(14695981039346656037)
	for _, s := range parts {
		for i := 0; i < len(s); i++ {
			h ^= uint64(s[i])
			h *= 1099511628211
		}
		h *= 1099511628211 // the zero byte: h ^= 0 is a no-op
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// slotSet is a set of the slots 0..size-1 of a range, one bit each: a /12 of service
// addresses is 128 KiB. nextFree skips 64 taken slots at a time, so that even a long run
// of taken slots (names crafted to hash alike) costs a probe little.
type slotSet struct {
	words []uint64
	size  int
	taken int
}

func newSlotSet(size int) *slotSet {
	return &slotSet{words: make([]uint64, (size+63)/64), size: size}
}

func (s *slotSet) has(i int) bool { return s.words[i/64]&(1<<(i%64)) != 0 }

func (s *slotSet) add(i int) {
	if !s.has(i) {
		s.words[i/64] |= 1 << (i % 64)
		s.taken++
	}
}

func (s *slotSet) full() bool { return s.taken == s.size }

// nextFree returns the first free slot at or after start, wrapping past the end (linear
// probing), or false when every slot is taken.
func (s *slotSet) nextFree(start int) (int, bool) {
	if s.full() {
		return 0, false
	}
	if i, ok := s.freeIn(start, s.size); ok {
		return i, true
	}
	return s.freeIn(0, start)
}

// freeIn returns the first free slot in [from, to).
func (s *slotSet) freeIn(from, to int) (int, bool) {
	for i := from; i < to; {
		free := ^s.words[i/64] >> (i % 64)
		if free == 0 {
			i += 64 - i%64
			continue
		}
		if j := i + bits.TrailingZeros64(free); j < to {
			return j, true
		}
		return 0, false
	}
	return 0, false
}

// slotRequest is one request to assignSlots: a slot of space (one set of slots per
// space: a protocol's ports) that it wants, and the slot its derived search starts at.
type slotRequest struct {
	space int
	// want is the slot asked for explicitly, or -1 when none (or none usable) was.
	want int
	// home is where the search for a derived slot starts: a hash of the key.
	home int
}

// slotResult is where one request ended up.
type slotResult struct {
	// slot is the slot assigned, or -1 when the space is full.
	slot int
	// holder is the index of the request that kept the slot this one wanted, or -1.
	holder int
}

// assignSlots is the scheme the Service allocators share. reqs are in key order (the
// caller sorts them and drops duplicate keys), and each space has size slots. First every
// explicit request takes the slot it wants, the lower key keeping a slot two want; then
// every other request, in key order, takes its home slot or the next free one after it
// (linear probing), so that a request moves only when one before it in key order lands on
// its slot.
func assignSlots(size int, reqs []slotRequest) []slotResult {
	spaces := map[int]*slotSet{}
	space := func(i int) *slotSet {
		if spaces[i] == nil {
			spaces[i] = newSlotSet(size)
		}
		return spaces[i]
	}
	type spaceSlot struct{ space, slot int }
	explicit := map[spaceSlot]int{}
	out := make([]slotResult, len(reqs))
	for i, r := range reqs {
		out[i] = slotResult{slot: -1, holder: -1}
		if r.want < 0 {
			continue
		}
		at := spaceSlot{r.space, r.want}
		if holder, taken := explicit[at]; taken {
			out[i].holder = holder
			continue
		}
		explicit[at] = i
		space(r.space).add(r.want)
		out[i].slot = r.want
	}
	for i, r := range reqs {
		if out[i].slot >= 0 {
			continue
		}
		if slot, ok := space(r.space).nextFree(r.home); ok {
			space(r.space).add(slot)
			out[i].slot = slot
		}
	}
	return out
}

// Problem is a request that did not get what it asked for, or got nothing: a Service
// (VIPProblem) or a Service port (NodePortProblem).
type Problem[K, V comparable] struct {
	// Key names the Service or Service port.
	Key K
	// Kind says what went wrong.
	Kind ProblemKind
	// Requested is what was asked for; the zero value when nothing was.
	Requested V
	// Holder is the request that keeps Requested, for ProblemTaken.
	Holder K
	// Assigned is what was given instead; the zero value when nothing was.
	Assigned V
	// Message says all of it in a sentence a user understands.
	Message string
}

// String returns the key and the message: "default/web: clusterIP …".
func (p Problem[K, V]) String() string { return fmt.Sprint(p.Key) + ": " + p.Message }

// checked is a request as its allocator has checked it, ready for allocate.
type checked[K, V comparable] struct {
	key       K
	requested V
	slot      slotRequest
	// problem says why the request gets nothing (with drop) or cannot have what it asked
	// for (another is derived); nil when all is well.
	problem *Problem[K, V]
	drop    bool
}

// scheme is what an allocator tells allocate about its requests R.
type scheme[K, V comparable, R any] struct {
	// size is the number of slots in each space.
	size int
	// order sorts requests by key first, then by the rest, so that of one key's
	// duplicates the same one counts on every node.
	order func(a, b R) int
	// compareKeys sorts problems.
	compareKeys func(a, b K) int
	// check checks one request.
	check func(R) checked[K, V]
	// value is the address or port of a slot.
	value func(slot int) V
	// describe names what a request asked for, e.g. "clusterIP 10.96.0.10".
	describe func(checked[K, V]) string
	// keyOrder says what the order of keys is, for users: "namespace and name".
	keyOrder string
	// full says that nothing is left for a request.
	full func(checked[K, V]) string
}

// allocate runs the scheme AssignVIPs and AssignNodePorts share: requests in key order,
// one per key, through assignSlots, with a problem for each that did not get what it
// asked for. Problems come in key order.
func allocate[K, V comparable, R any](reqs []R, s scheme[K, V, R]) (map[K]V, []Problem[K, V]) {
	sorted := slices.Clone(reqs)
	slices.SortFunc(sorted, s.order)
	var problems []Problem[K, V]
	kept := make([]checked[K, V], 0, len(sorted))
	for _, r := range sorted {
		c := s.check(r)
		switch {
		case c.drop:
			problems = append(problems, *c.problem)
			continue
		case len(kept) > 0 && kept[len(kept)-1].key == c.key:
			problems = append(problems, Problem[K, V]{Key: c.key, Kind: ProblemDuplicate, Requested: c.requested,
				Message: "listed more than once: only its first request counts"})
			continue
		}
		kept = append(kept, c)
	}
	slotReqs := make([]slotRequest, len(kept))
	for i, c := range kept {
		slotReqs[i] = c.slot
	}
	out := make(map[K]V, len(kept))
	for i, res := range assignSlots(s.size, slotReqs) {
		c := kept[i]
		p := c.problem
		if res.holder >= 0 {
			holder := kept[res.holder].key
			p = &Problem[K, V]{Key: c.key, Kind: ProblemTaken, Requested: c.requested, Holder: holder,
				Message: fmt.Sprintf("%s is also requested by %v, which keeps it (it sorts first by %s)", s.describe(c), holder, s.keyOrder)}
		}
		if res.slot >= 0 {
			out[c.key] = s.value(res.slot)
			if p != nil {
				p.Assigned = out[c.key]
				p.Message += fmt.Sprintf(": assigned %v instead", p.Assigned)
			}
		}
		if p != nil {
			problems = append(problems, *p)
		}
		if res.slot < 0 {
			problems = append(problems, Problem[K, V]{Key: c.key, Kind: ProblemRangeFull, Requested: c.requested, Message: s.full(c)})
		}
	}
	slices.SortStableFunc(problems, func(a, b Problem[K, V]) int { return s.compareKeys(a.Key, b.Key) })
	return out, problems
}
