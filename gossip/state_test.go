package gossip

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// op is one input to a store in a table test.
type op struct {
	observe int64        // when non-zero: observeEpoch("a", observe)
	delta   *delta       // applyDelta
	state   []ownerState // mergeState
	want    bool         // the call's result
}

func up(epoch int64, counter uint64, id, addr string) op {
	return op{delta: &delta{Owner: "a", Epoch: epoch, Record: record{Counter: counter, Info: InstanceInfo{ID: id, Node: "a", Addr: addr}}}, want: true}
}

func del(epoch int64, counter uint64, id string) op {
	return op{delta: &delta{Owner: "a", Epoch: epoch, Record: record{Counter: counter, Deleted: true, Info: InstanceInfo{ID: id, Node: "a"}}}, want: true}
}

func ignored(o op) op { o.want = false; return o }

func full(epoch int64, floor uint64, recs ...op) op {
	st := ownerState{Owner: "a", Epoch: epoch, Floor: floor}
	for _, r := range recs {
		st.Records = append(st.Records, r.delta.Record)
	}
	return op{state: []ownerState{st}, want: true}
}

func observe(epoch int64) op { return op{observe: epoch, want: true} }

// liveOf lists owner a's live instances as "id@addr".
func liveOf(s *store) []string {
	var out []string
	for _, inst := range (View{Owners: s.view(func(owner string) bool { return owner == "a" })}).Instances() {
		out = append(out, inst.ID+"@"+inst.Addr)
	}
	return out
}

func TestStoreApply(t *testing.T) {
	tests := []struct {
		name string
		ops  []op
		want []string
	}{
		{"upserts in order", []op{observe(1), up(1, 1, "x", "v1"), up(1, 2, "y", "v1"), up(1, 3, "x", "v2")},
			[]string{"x@v2", "y@v1"}},
		{"stale upsert after newer is ignored", []op{observe(1), up(1, 2, "x", "v2"), ignored(up(1, 1, "x", "v1"))},
			[]string{"x@v2"}},
		{"duplicate delivery is ignored", []op{observe(1), up(1, 1, "x", "v1"), ignored(up(1, 1, "x", "v1"))},
			[]string{"x@v1"}},
		{"late upsert cannot resurrect a deleted instance", []op{observe(1), del(1, 2, "x"), ignored(up(1, 1, "x", "v1"))},
			nil},
		{"delete after upsert", []op{observe(1), up(1, 1, "x", "v1"), del(1, 2, "x")},
			nil},
		{"state before the owner's metadata is kept but not shown", []op{up(1, 1, "x", "v1")},
			nil},
		{"metadata confirms tentative state", []op{up(1, 1, "x", "v1"), del(1, 2, "y"), observe(1)},
			[]string{"x@v1"}},
		{"metadata of another epoch replaces tentative state", []op{up(2, 1, "x", "v1"), observe(1), up(1, 1, "y", "v1")},
			[]string{"y@v1"}},
		{"a higher epoch replaces tentative state", []op{up(1, 1, "x", "v1"), up(2, 1, "y", "v1"), ignored(up(1, 2, "z", "v1")), observe(2)},
			[]string{"y@v1"}},
		{"previous run's delta is ignored", []op{observe(2), ignored(up(1, 5, "x", "old"))},
			nil},
		{"next run's delta before its metadata is ignored", []op{observe(1), ignored(up(2, 1, "x", "new"))},
			nil},
		{"restart replaces the previous run's state", []op{observe(1), up(1, 1, "x", "old"), up(1, 2, "y", "old"), observe(2), up(2, 1, "z", "new")},
			[]string{"z@new"}},
		{"restart with a clock that stepped back still replaces", []op{observe(9), up(9, 1, "x", "old"), observe(3), up(3, 1, "z", "new")},
			[]string{"z@new"}},
		{"same epoch observed again keeps state", []op{observe(1), up(1, 1, "x", "v1"), ignored(observe(1))},
			[]string{"x@v1"}},
		{"owner's full state drops what it no longer has", []op{observe(1), up(1, 1, "x", "v1"), up(1, 2, "y", "v1"),
			full(1, 4, up(1, 3, "z", "v1"))},
			[]string{"z@v1"}},
		{"full state keeps changes newer than its floor", []op{observe(1), up(1, 5, "late", "v1"),
			full(1, 4, up(1, 3, "z", "v1"))},
			[]string{"late@v1", "z@v1"}},
		{"deltas at or below the floor are stale", []op{observe(1), full(1, 4, up(1, 3, "z", "v1")),
			ignored(up(1, 2, "x", "v1")), ignored(del(1, 3, "z")), up(1, 5, "x", "v5")},
			[]string{"x@v5", "z@v1"}},
		{"relayed partial state merges per record", []op{observe(1), up(1, 1, "x", "v1"),
			full(1, 0, up(1, 2, "y", "v1"), del(1, 3, "x"))},
			[]string{"y@v1"}},
		{"older full state changes nothing", []op{observe(1), full(1, 4, up(1, 3, "z", "v3")),
			ignored(full(1, 2, up(1, 1, "x", "v1")))},
			[]string{"z@v3"}},
		{"previous run's full state is ignored", []op{observe(2), ignored(full(1, 9, up(1, 1, "x", "old")))},
			nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore("self", 100)
			for i, o := range tt.ops {
				var got bool
				switch {
				case o.observe != 0:
					got = s.observeEpoch("a", o.observe)
				case o.delta != nil:
					got = s.applyDelta(*o.delta)
				default:
					got = s.mergeState(o.state)
				}
				if got != o.want {
					t.Fatalf("op %d (%+v) returned %v, want %v", i, o, got, o.want)
				}
			}
			if got := liveOf(s); !slices.Equal(got, tt.want) {
				t.Fatalf("live instances %v, want %v", got, tt.want)
			}
		})
	}
}

func TestStoreTombstonesDroppedAtFloor(t *testing.T) {
	s := newStore("self", 100)
	s.observeEpoch("a", 1)
	s.applyDelta(*del(1, 2, "x").delta)
	if n := len(s.owners["a"].records); n != 1 {
		t.Fatalf("want the tombstone kept, have %d records", n)
	}
	s.mergeState(full(1, 2).state)
	if n := len(s.owners["a"].records); n != 0 {
		t.Fatalf("want the tombstone dropped once the floor covers it, have %d records", n)
	}
}

func TestStoreSetLocal(t *testing.T) {
	s := newStore("self", 7)
	a, b := InstanceInfo{ID: "a", Addr: "1"}, InstanceInfo{ID: "b", Addr: "1"}

	steps := []struct {
		list []InstanceInfo
		want []string // deltas as "id:counter" or "-id:counter" for deletions
	}{
		{[]InstanceInfo{b, a}, []string{"a:1", "b:2"}}, // sorted by ID
		{[]InstanceInfo{a, b}, nil},                    // no change, no delta
		{[]InstanceInfo{a, {ID: "b", Addr: "2"}}, []string{"b:3"}},
		{[]InstanceInfo{{ID: "b", Addr: "2"}}, []string{"-a:4"}},
		{nil, []string{"-b:5"}},
	}
	for i, step := range steps {
		var got []string
		for _, d := range s.setLocal(step.list) {
			if d.Owner != "self" || d.Epoch != 7 {
				t.Fatalf("step %d: delta %+v not stamped with owner self, epoch 7", i, d)
			}
			prefix := ""
			if d.Record.Deleted {
				prefix = "-"
			} else if d.Record.Info.Node != "self" {
				t.Fatalf("step %d: Node %q, want self", i, d.Record.Info.Node)
			}
			got = append(got, fmt.Sprintf("%s%s:%d", prefix, d.Record.Info.ID, d.Record.Counter))
		}
		if !slices.Equal(got, step.want) {
			t.Fatalf("step %d: deltas %v, want %v", i, got, step.want)
		}
		if own := s.owners["self"]; own.floor != s.counter || len(own.records) != len(step.list) {
			t.Fatalf("step %d: floor %d counter %d records %d", i, own.floor, s.counter, len(own.records))
		}
	}
}

func TestStoreIgnoresOwnStateFromPeers(t *testing.T) {
	s := newStore("self", 7)
	s.setLocal([]InstanceInfo{{ID: "mine"}})
	if s.applyDelta(delta{Owner: "self", Epoch: 7, Record: record{Counter: 99, Deleted: true, Info: InstanceInfo{ID: "mine"}}}) {
		t.Fatal("a peer's delta about our own instances was applied")
	}
	if s.mergeState([]ownerState{{Owner: "self", Epoch: 7, Floor: 99}}) || s.observeEpoch("self", 8) {
		t.Fatal("a peer's state about our own instances was applied")
	}
	if got := (View{Owners: s.view(func(string) bool { return true })}).Instances(); len(got) != 1 || got[0].ID != "mine" {
		t.Fatalf("own instances changed: %+v", got)
	}
}

// relay merges what src exports for push/pull into dst, as a Cluster does.
func relay(dst, src *store) {
	states, deltas := src.export()
	dst.mergeState(states)
	for _, d := range deltas {
		dst.applyDelta(d)
	}
}

// TestStoreConverges drives an owner through random changes and delivers its
// deltas to a receiver in random order, with losses and duplicates; a second
// receiver hears only the first's push/pull state and a third only the
// second's (state known only through other nodes). After one push/pull round
// from the owner down the chain every receiver equals the owner, and
// re-delivering every old delta changes nothing.
func TestStoreConverges(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 1))
			owner := newStore("a", 1)
			r1, r2, r3 := newStore("r1", 2), newStore("r2", 3), newStore("r3", 4)
			for _, r := range []*store{r1, r2, r3} {
				r.observeEpoch("a", 1)
			}

			var all []delta
			for range 30 {
				var list []InstanceInfo
				for id := range 12 {
					if rng.IntN(3) > 0 {
						list = append(list, InstanceInfo{ID: fmt.Sprint("i", id), Ready: rng.IntN(2) == 0})
					}
				}
				deltas := owner.setLocal(list)
				all = append(all, deltas...)
				rng.Shuffle(len(deltas), func(i, j int) { deltas[i], deltas[j] = deltas[j], deltas[i] })
				for _, d := range deltas {
					if rng.IntN(4) == 0 {
						continue // lost
					}
					r1.applyDelta(d)
					if rng.IntN(4) == 0 {
						r1.applyDelta(all[rng.IntN(len(all))]) // an old one, late
					}
				}
				if rng.IntN(3) == 0 {
					relay(r2, r1)
				}
				if rng.IntN(3) == 0 {
					relay(r3, r2)
				}
				for _, s := range []*store{owner, r1, r2, r3} {
					checkCachedView(t, s)
				}
			}

			relay(r1, owner)
			relay(r2, r1)
			relay(r3, r2)
			want := (View{Owners: owner.view(func(string) bool { return true })}).Instances()
			for name, r := range map[string]*store{"r1": r1, "r2": r2, "r3": r3} {
				got := (View{Owners: r.view(func(o string) bool { return o == "a" })}).Instances()
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("%s did not converge:\n got %+v\nwant %+v", name, got, want)
				}
				for _, d := range all {
					if r.applyDelta(d) {
						t.Fatalf("%s applied stale delta %+v", name, d)
					}
				}
			}
		})
	}
}

// checkCachedView checks that the view s hands out, from lists it keeps across changes,
// equals one built afresh from its records.
func checkCachedView(t *testing.T, s *store) {
	t.Helper()
	all := func(string) bool { return true }
	got := s.view(all)
	fresh := &store{self: s.self, owners: map[string]*ownerRecord{}}
	for name, o := range s.owners {
		fresh.owners[name] = &ownerRecord{confirmed: o.confirmed, records: o.records}
	}
	if want := fresh.view(all); !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: cached view\n%+v\nwant\n%+v", s.self, got, want)
	}
}

// TestStoreViewSharesUnchangedOwners: after a change of one owner's instances, the next
// view hands out a new list for that owner only and the very same lists for the others,
// which is what lets a consumer skip them; an owner that leaves or joins changes no other.
func TestStoreViewSharesUnchangedOwners(t *testing.T) {
	s := newStore("self", 1)
	for i, owner := range []string{"a", "b", "c"} {
		s.observeEpoch(owner, 1)
		for j := range 3 {
			s.applyDelta(delta{Owner: owner, Epoch: 1, Record: record{Counter: uint64(j + 1),
				Info: InstanceInfo{ID: fmt.Sprint("i", 2-j), Node: owner, Addr: fmt.Sprint(i)}}})
		}
	}
	all := func(string) bool { return true }
	v1 := s.view(all)
	s.applyDelta(delta{Owner: "b", Epoch: 1, Record: record{Counter: 4, Info: InstanceInfo{ID: "i1", Node: "b", Ready: true}}})
	v2 := s.view(all)
	if len(v1) != 3 || len(v2) != 3 {
		t.Fatalf("owners: %d then %d, want 3", len(v1), len(v2))
	}
	for i, o := range v2 {
		if want := o.Node != "b"; Same(v1[i].Instances, o.Instances) != want {
			t.Errorf("owner %s: same list %v, want %v", o.Node, !want, want)
		}
		if ids := []string{o.Instances[0].ID, o.Instances[1].ID, o.Instances[2].ID}; !slices.Equal(ids, []string{"i0", "i1", "i2"}) {
			t.Errorf("owner %s: instances %v, want sorted by ID", o.Node, ids)
		}
	}
	if !v2[1].Instances[1].Ready || v1[1].Instances[1].Ready {
		t.Errorf("owner b: the new view shows the change, the old one keeps what it showed: %+v then %+v", v1[1], v2[1])
	}

	s.forget("a")
	s.observeEpoch("d", 1)
	s.applyDelta(delta{Owner: "d", Epoch: 1, Record: record{Counter: 1, Info: InstanceInfo{ID: "i0", Node: "d"}}})
	v3 := s.view(all)
	if len(v3) != 3 || v3[0].Node != "b" || v3[2].Node != "d" || !Same(v3[0].Instances, v2[1].Instances) || !Same(v3[1].Instances, v2[2].Instances) {
		t.Errorf("after a left and d joined: %+v", v3)
	}
	if hidden := s.view(func(o string) bool { return o != "c" }); len(hidden) != 2 || hidden[1].Node != "d" {
		t.Errorf("c is not alive, yet shown: %+v", hidden)
	}
}
