package planner

import (
	"math/rand"
	"slices"
	"testing"
)

func TestVirtualNodes(t *testing.T) {
	tests := []struct {
		milliCPU int64
		want     int
	}{
		{0, minVirtualNodes},
		{1000, minVirtualNodes},
		{4000, 16},
		{8000, maxVirtualNodes},
		{64000, maxVirtualNodes},
	}
	for _, tt := range tests {
		if got := virtualNodes(Resources{MilliCPU: tt.milliCPU}); got != tt.want {
			t.Errorf("virtualNodes(%dm) = %d, want %d", tt.milliCPU, got, tt.want)
		}
	}
}

// walkOrder lists the distinct nodes met walking r from pos, skipping non-members.
func walkOrder(r ring, pos uint64, member func(int32) bool) []int32 {
	var order []int32
	for i, k := r.start(pos), 0; k < len(r.points); i, k = (i+1)%len(r.points), k+1 {
		if n := r.points[i].node; member(n) && !slices.Contains(order, n) {
			order = append(order, n)
		}
	}
	return order
}

// A sub-ring must order its nodes exactly as the full ring does, or a workload's choice
// would depend on which ring served it.
func TestSubRingKeepsOrder(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	const n = 40
	hashes := make([]uint64, n)
	alloc := make([]Resources, n)
	all := make([]int32, n)
	for i := range all {
		hashes[i], alloc[i], all[i] = rng.Uint64(), Resources{MilliCPU: int64(rng.Intn(16000))}, int32(i)
	}
	full := newRing(hashes, alloc, all)
	members := newBitset(n)
	for i := range all {
		if rng.Intn(3) == 0 {
			members.set(int32(i))
		}
	}
	sub := full.subset(members)
	for range 100 {
		pos := rng.Uint64()
		want := walkOrder(full, pos, members.has)
		if got := walkOrder(sub, pos, func(int32) bool { return true }); !slices.Equal(got, want) {
			t.Fatalf("from %x the sub-ring walks %v, the full ring %v", pos, got, want)
		}
	}
	if len(walkOrder(full, 0, func(int32) bool { return true })) != n {
		t.Error("a full walk does not meet every node")
	}
}

func TestRingStart(t *testing.T) {
	r := ring{points: []point{{pos: 10}, {pos: 20}, {pos: 30}}}
	for pos, want := range map[uint64]int{0: 0, 10: 0, 11: 1, 30: 2, 31: 0, ^uint64(0): 0} {
		if got := r.start(pos); got != want {
			t.Errorf("start(%d) = %d, want %d", pos, got, want)
		}
	}
}

// The spread minimum follows counts up and down over the eligible domains only.
func TestSpreadMinimum(t *testing.T) {
	topo := &topology{dom: []int32{0, 1, 2, 3}, domains: 4}
	tr := &tracker{topo: topo, match: make([]int32, 4)}
	allowed := newBitset(4)
	for _, n := range []int32{0, 1, 2} { // node 3's domain is not eligible
		allowed.set(n)
	}
	s := newSpreadState(tr, spreadConstraint(1), true, allowed)
	tr.spreads = []*spreadState{s}
	steps := []struct {
		node    int32
		delta   int32
		wantMin int32
	}{
		{0, 1, 0}, {1, 1, 0}, {3, 1, 0}, {3, 1, 0}, {2, 1, 1}, {0, 1, 1}, {1, 1, 1}, {2, 1, 2}, {1, -1, 1}, {1, -1, 0},
	}
	for i, st := range steps {
		tr.add(st.node, st.delta)
		if s.min != st.wantMin {
			t.Fatalf("step %d (node %d %+d): min %d, want %d; counts %v", i, st.node, st.delta, s.min, st.wantMin, tr.match)
		}
	}
}

// The ring's bucketed sort gives the order a comparison sort of every point gives.
func TestRingIsComparisonOrder(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, n := range []int{0, 1, 7, 100, 5000} {
		hashes := make([]uint64, n)
		alloc := make([]Resources, n)
		var members []int32
		for i := range hashes {
			hashes[i] = rng.Uint64()
			if rng.Intn(20) == 0 && i > 0 { // a name hash collision: equal positions, ordered by node
				hashes[i] = hashes[rng.Intn(i)]
			}
			alloc[i].MilliCPU = rng.Int63n(10000)
			if rng.Intn(10) != 0 {
				members = append(members, int32(i))
			}
		}
		var want []point
		for _, m := range members {
			for v := range virtualNodes(alloc[m]) {
				want = append(want, point{pos: mix64(hashes[m] + uint64(v+1)*goldenRatio64), node: m})
			}
		}
		slices.SortFunc(want, comparePoints)
		if got := newRing(hashes, alloc, members).points; !slices.Equal(got, want) {
			t.Fatalf("%d nodes: the ring is not in position, then node, order", n)
		}
	}
}
