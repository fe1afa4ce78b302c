package network

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

func TestSlotSetNextFree(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	for trial := range 2000 {
		size := 1 + rng.IntN(300)
		s := newSlotSet(size)
		naive := make([]bool, size)
		fill := rng.Float64()
		for i := range size {
			if rng.Float64() < fill {
				s.add(i)
				s.add(i) // adding twice counts once
				naive[i] = true
			}
		}
		start := rng.IntN(size)
		want, wantOK := -1, false
		for n := range size {
			if i := (start + n) % size; !naive[i] {
				want, wantOK = i, true
				break
			}
		}
		got, ok := s.nextFree(start)
		if ok != wantOK || ok && got != want {
			t.Fatalf("trial %d: size %d, start %d: nextFree = %d, %v; want %d, %v", trial, size, start, got, ok, want, wantOK)
		}
		if s.full() != !wantOK {
			t.Fatalf("trial %d: full() = %v with a free slot %v", trial, s.full(), wantOK)
		}
	}
}

// The hash decides every derived address, port and subnet preference: changing it would
// move them all in a cluster that upgrades. These values must never change; they were
// computed by a separate implementation of the definition (FNV-1a over each part and a
// zero byte, then the MurmurHash3 finaliser), not by this code.
func TestStableHashNeverChanges(t *testing.T) {
	for _, tc := range []struct {
		parts []string
		want  uint64
	}{
		{nil, 0xefd01f60ba992926},
		{[]string{"node-a"}, 0x134553ae30ca9879},
		{[]string{"default", "web"}, 0xad95a45bc400d274},
		{[]string{"default", "web", "http"}, 0x00004e3517aa440f},
	} {
		if got := stableHash(tc.parts...); got != tc.want {
			t.Errorf("stableHash(%q) = %#x, want %#x", tc.parts, got, tc.want)
		}
	}
	if stableHash("ab", "c") == stableHash("a", "bc") {
		t.Error("parts are not kept apart")
	}
	vips, _, _ := AssignVIPs(netip.MustParsePrefix("10.96.0.0/12"), []VIPRequest{{Key: ServiceKey{"default", "web"}}})
	if got, want := vips[ServiceKey{"default", "web"}], netip.MustParseAddr("10.108.75.32"); got != want {
		t.Errorf("default/web in 10.96.0.0/12 got %s, want %s", got, want)
	}
}
