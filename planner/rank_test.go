package planner

import (
	"slices"
	"testing"

	"github.com/shoalhq/shoal/spec"
)

func TestBalanceScore(t *testing.T) {
	alloc := Resources{MilliCPU: 1000, MemoryBytes: 1000}
	tests := []struct {
		name      string
		used, req Resources
		want      int64
	}{
		{"empty node, no request", Resources{}, Resources{}, 100},
		{"half of both after placing", Resources{250, 250}, Resources{250, 250}, 50},
		{"cpu full, memory empty", Resources{1000, 0}, Resources{}, 50},
		{"overcommitted counts as full", Resources{2000, 2000}, Resources{}, 0},
		{"rounds down", Resources{1, 1}, Resources{}, 99},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := balanceScore(alloc, tt.used.MilliCPU, tt.used.MemoryBytes, tt.req); got != tt.want {
				t.Errorf("balanceScore = %d, want %d", got, tt.want)
			}
		})
	}
	if got := balanceScore(Resources{}, 0, 0, Resources{}); got != 0 {
		t.Errorf("a node with nothing allocatable scores %d, want 0", got)
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		name   string
		raw    []int64
		invert bool
		want   []int64
	}{
		{"spread onto 0-100", []int64{0, 5, 10}, false, []int64{0, 50, 100}},
		{"negative raws", []int64{-30, -10}, false, []int64{0, 100}},
		{"inverted: fewest wins", []int64{1, 3}, true, []int64{100, 0}},
		{"all equal: no opinion", []int64{7, 7}, false, []int64{0, 0}},
		{"one candidate", []int64{4}, true, []int64{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := normalize(tt.raw, tt.invert); !slices.Equal(got, tt.want) {
				t.Errorf("normalize = %v, want %v", got, tt.want)
			}
		})
	}
}

// stateWith builds the planner's state for a cluster in which the given instances run and
// are kept, so that rankers can be read node by node.
func stateWith(t *testing.T, nodes []Node, deps []*spec.Deployment, instances []Instance) *state {
	t.Helper()
	st := newState(New(nil), desired(deps...), IndexNodes(nodes), instances)
	st.keepRunning()
	return st
}

// runningOn is a ready instance of slot 0 of d on a node.
func runningOn(d *spec.Deployment, slot int, node string) Instance {
	h := spec.InstanceHash(nil, d)
	return Instance{ID: InstanceID(namespaceOf(d), d.Metadata.Name, h, slot), Namespace: namespaceOf(d), Workload: d.Metadata.Name,
		Node: node, SpecHash: h, Ready: true, Running: true}
}

func TestPodAffinityRaw(t *testing.T) {
	nodes := []Node{node("a", "z0"), node("b", "z0"), node("c", "z1")}
	cache := dep("cache", 2)
	web := dep("web", 1,
		preferredPodAffinity(10, "cache", LabelZone, false),
		preferredPodAffinity(3, "cache", LabelHostname, true))
	st := stateWith(t, nodes, []*spec.Deployment{cache, web}, []Instance{runningOn(cache, 0, "a"), runningOn(cache, 1, "b")})
	w := st.byKey["default/web"]
	// a and b: two caches in the zone (+20) and one on the host (-3); c: none.
	for name, want := range map[string]int64{"a": 17, "b": 17, "c": 0} {
		if got := podAffinityRaw(w, st.byName[name]); got != want {
			t.Errorf("podAffinityRaw on %s = %d, want %d", name, got, want)
		}
	}
}

func TestSpreadRaw(t *testing.T) {
	nodes := []Node{node("a", "z0"), node("b", "z0"), node("c", "z1"), {Name: "d", Allocatable: Resources{1000, gi}, Alive: true}}
	web := dep("web", 3, spread(LabelZone, 1, spec.ScheduleAnyway))
	st := stateWith(t, nodes, []*spec.Deployment{web}, []Instance{runningOn(web, 0, "a"), runningOn(web, 1, "b")})
	w := st.byKey["default/web"]
	// Counting the replica itself: z0 would hold 3, z1 1; d has no zone and counts as holding all.
	for name, want := range map[string]int64{"a": 3, "b": 3, "c": 1, "d": 3} {
		if got := spreadRaw(w, st.byName[name]); got != want {
			t.Errorf("spreadRaw on %s = %d, want %d", name, got, want)
		}
	}
}

func TestChoose(t *testing.T) {
	nodes := []Node{node("a", "z0"), node("b", "z0")}
	// Nodes have 4 cores and 8 GiB: the filler takes 7.5% or 12.5% of both.
	tests := []struct {
		name          string
		fillerOn      string
		fillCPU, fill string
		sample        []string
		want          string
	}{
		{"equal nodes: ring order decides", "", "", "", []string{"b", "a"}, "b"},
		{"under 10% freer: ring order decides", "b", "300m", "614Mi", []string{"b", "a"}, "b"},
		{"over 10% freer: balance decides", "b", "500m", "1Gi", []string{"b", "a"}, "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			deps := []*spec.Deployment{dep("web", 1)}
			var instances []Instance
			if tt.fillerOn != "" {
				f := dep("filler", 1, requests(tt.fillCPU, tt.fill))
				deps = append(deps, f)
				instances = append(instances, runningOn(f, 0, tt.fillerOn))
			}
			st := stateWith(t, nodes, deps, instances)
			var sample []int32
			for _, n := range tt.sample {
				sample = append(sample, st.byName[n])
			}
			var ex ReplicaExplanation
			got := st.nodes[st.choose(st.byKey["default/web"], sample, 0, &ex)].name
			if got != tt.want {
				t.Errorf("choose = %s, want %s; candidates %+v", got, tt.want, ex.Candidates)
			}
		})
	}
}

// Preferred node affinity is honoured first: every replica lands on a preferred node while
// one fits, and the rest spill over instead of staying unplaced.
func TestPreferredNodeAffinityFillsPreferredNodesFirst(t *testing.T) {
	nodes := []Node{small("a", "z0"), small("b", "z0"), small("c", "z1"), small("d", "z1")}
	web := dep("web", 6, requests("400m", ""), preferredNodeAffinity(50, req(LabelZone, spec.OpIn, "z1")))
	p := plan(desired(web), View{Nodes: nodes})
	inZ1 := 0
	for _, a := range p.Assignments {
		if a.Node == "c" || a.Node == "d" {
			inZ1++
		}
	}
	if len(p.Assignments) != 6 || inZ1 != 4 {
		t.Errorf("placed %d replicas, %d in the preferred zone; want 6 with 4 (all that fit) in z1: %+v", len(p.Assignments), inZ1, p.Assignments)
	}
}

// Preferred anti-affinity by host steers replicas apart whenever the sample offers a choice.
func TestPreferredAntiAffinitySpreadsReplicas(t *testing.T) {
	with := dep("web", 10, preferredPodAffinity(100, "web", LabelHostname, true))
	without := dep("web", 10)
	distinct := func(d *spec.Deployment) int {
		nodes := map[string]bool{}
		for _, a := range plan(desired(d), View{Nodes: cluster(10, 1)}).Assignments {
			nodes[a.Node] = true
		}
		return len(nodes)
	}
	if a, b := distinct(with), distinct(without); a <= b || a < 8 {
		t.Errorf("with preferred anti-affinity replicas use %d nodes, without %d; want more, and at least 8 of 10", a, b)
	}
}
