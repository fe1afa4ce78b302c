package planner

import (
	"errors"
	"strings"
	"testing"

	"github.com/shoalhq/shoal/spec"
)

func stopReasons(p Placement) map[string]string {
	out := map[string]string{}
	for _, s := range p.Stop {
		out[s.Instance.ID+"@"+s.Instance.Node] = s.Reason
	}
	return out
}

func TestPlanEmpty(t *testing.T) {
	p := plan(spec.Desired{Revision: spec.Revision{Commit: "c0ffee"}}, View{Nodes: cluster(2, 1)})
	if p.Revision != "c0ffee" || len(p.Assignments)+len(p.Unplaced)+len(p.Stop)+len(p.Rollouts) != 0 {
		t.Errorf("empty desired state planned %+v", p)
	}
	p = plan(desired(dep("web", 2)), View{})
	if len(p.Unplaced) != 1 || p.Unplaced[0].Replicas() != 2 || p.Unplaced[0].Reason != "0/0 nodes are available." {
		t.Errorf("no nodes: unplaced %+v, want both replicas in one entry with a reason", p.Unplaced)
	}
}

func TestRunningInstanceStays(t *testing.T) {
	web := dep("web", 1)
	nodes := cluster(5, 1)
	fresh := plan(desired(web), View{Nodes: nodes})
	// Somewhere the plan would not choose by itself.
	elsewhere := nodeName(0)
	if fresh.Assignments[0].Node == elsewhere {
		elsewhere = nodeName(1)
	}
	tests := []struct {
		name     string
		instance Instance
		nodes    []Node
		stays    bool
		stop     string
	}{
		{"running and ready stays", runningOn(web, 0, elsewhere), nodes, true, ""},
		{"running but not yet ready stays", func() Instance { i := runningOn(web, 0, elsewhere); i.Ready = false; return i }(), nodes, true, ""},
		{"failed instance is placed afresh", func() Instance { i := runningOn(web, 0, elsewhere); i.Running = false; return i }(), nodes, false, "moved to " + fresh.Assignments[0].Node + ": not running"},
		{"dead node", runningOn(web, 0, elsewhere), func() []Node { n := cluster(5, 1); n[elsewhere[3]-'0'].Alive = false; return n }(), false, "moved to " + fresh.Assignments[0].Node + ": node(s) not alive"},
		{"node unknown to the view", runningOn(web, 0, "gone"), nodes, false, "moved to " + fresh.Assignments[0].Node + ": node not in view"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := plan(desired(web), View{Nodes: tt.nodes, Instances: []Instance{tt.instance}})
			if got := p.Assignments[0].Node; (got == tt.instance.Node) != tt.stays {
				t.Errorf("replica on %s, was on %s; want stays=%v", got, tt.instance.Node, tt.stays)
			}
			if got := stopReasons(p)[tt.instance.ID+"@"+tt.instance.Node]; got != tt.stop {
				t.Errorf("stop reason %q, want %q", got, tt.stop)
			}
		})
	}
}

// A running instance whose node no longer satisfies a hard constraint moves.
func TestKeptInstancesObeyHardConstraints(t *testing.T) {
	ssd := dep("web", 1, nodeSelector("disk", "ssd"))
	nodes := []Node{node("a", "z0"), labelled(node("b", "z0"), "disk", "ssd")}
	p := plan(desired(ssd), View{Nodes: nodes, Instances: []Instance{runningOn(ssd, 0, "a")}})
	if got := outcome(p, "web", 0); got != "b" {
		t.Errorf("instance on a node that lost its label: placed %q, want b", got)
	}
	if got := stopReasons(p)[runningOn(ssd, 0, "a").ID+"@a"]; got != "moved to b: node(s) didn't match node selector" {
		t.Errorf("stop reason %q", got)
	}

	// After a partition, two replicas that must not share a host both run on a.
	anti := dep("web", 2, antiAffinity("web", LabelHostname))
	p = plan(desired(anti), View{Nodes: nodes, Instances: []Instance{runningOn(anti, 0, "a"), runningOn(anti, 1, "a")}})
	if outcome(p, "web", 0) != "a" || outcome(p, "web", 1) != "b" {
		t.Errorf("anti-affine pair on one host: placed %s and %s, want slot 0 kept on a and slot 1 moved to b", outcome(p, "web", 0), outcome(p, "web", 1))
	}

	// Kept instances must still fit: the node shrank below what both need.
	big := dep("web", 2, requests("600m", ""))
	p = plan(desired(big), View{Nodes: []Node{small("a", "z0")}, Instances: []Instance{runningOn(big, 0, "a"), runningOn(big, 1, "a")}})
	if outcome(p, "web", 0) != "a" || !strings.HasPrefix(outcome(p, "web", 1), "unplaced: ") {
		t.Errorf("over capacity: got %s and %s, want slot 0 kept and slot 1 unplaced", outcome(p, "web", 0), outcome(p, "web", 1))
	}
	if got := stopReasons(p)[runningOn(big, 1, "a").ID+"@a"]; got != "cannot stay (insufficient cpu) and no node can take it" {
		t.Errorf("stop reason %q", got)
	}

	// A kept instance whose required partner is gone from its zone moves to the partner.
	cache := dep("cache", 1, nodeSelector(LabelZone, "z1"))
	web := dep("web", 1, podAffinity("cache", LabelZone))
	zones := []Node{node("a", "z0"), node("b", "z1")}
	p = plan(desired(cache, web), View{Nodes: zones, Instances: []Instance{runningOn(web, 0, "a")}})
	if outcome(p, "web", 0) != "b" {
		t.Errorf("kept instance without its affinity partner: placed %s, want b", outcome(p, "web", 0))
	}
}

func TestDuplicatesResolveByRule(t *testing.T) {
	web := dep("web", 1)
	nodes := cluster(3, 1)
	notReady := func(i Instance) Instance { i.Ready = false; return i }
	tests := []struct {
		name      string
		instances []Instance
		keep      string
	}{
		{"ready beats not ready", []Instance{notReady(runningOn(web, 0, "n000")), runningOn(web, 0, "n002")}, "n002"},
		{"then the lowest node name", []Instance{runningOn(web, 0, "n002"), runningOn(web, 0, "n001")}, "n001"},
		{"a copy that may not stay does not count", []Instance{runningOn(web, 0, "n001"), runningOn(web, 0, "lost")}, "n001"},
		{"two reports from one node are one instance", []Instance{notReady(runningOn(web, 0, "n002")), runningOn(web, 0, "n002"), notReady(runningOn(web, 0, "n001"))}, "n002"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := plan(desired(web), View{Nodes: nodes, Instances: tt.instances})
			if got := outcome(p, "web", 0); got != tt.keep {
				t.Errorf("kept %s, want %s", got, tt.keep)
			}
			if len(p.Stop) != 1 {
				t.Fatalf("stops %+v, want every other copy", p.Stop)
			}
			for _, s := range p.Stop {
				if s.Instance.Node == tt.keep {
					t.Errorf("the kept copy is also stopped: %+v", s)
				}
			}
		})
	}
}

func TestStops(t *testing.T) {
	web := dep("web", 2)
	nodes := cluster(2, 1)
	orphan := runningOn(dep("gone", 1), 0, "n000")
	extra := runningOn(web, 5, "n001")
	p := plan(desired(web), View{Nodes: nodes, Instances: []Instance{orphan, extra, runningOn(web, 0, "n000")}})
	want := map[string]string{
		orphan.ID + "@n000": "its Deployment is not in the desired state",
		extra.ID + "@n001":  "scaled down to 2 replicas",
	}
	got := stopReasons(p)
	if len(got) != len(want) {
		t.Errorf("stops %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("stop %s: %q, want %q", k, got[k], v)
		}
	}
	if s := p.StopsOn("n001"); len(s) != 1 || s[0].Instance != extra {
		t.Errorf("StopsOn(n001) = %+v", s)
	}
	for _, n := range []string{"n000", "n001"} {
		for _, a := range p.ForNode(n) {
			if a.Node != n {
				t.Errorf("ForNode(%s) returned %+v", n, a)
			}
		}
	}
	if len(p.ForNode("n000"))+len(p.ForNode("n001")) != 2 || len(p.ForNode("nowhere")) != 0 {
		t.Error("ForNode does not partition the assignments")
	}
}

func TestOutdatedInstancesGoToRollout(t *testing.T) {
	v1 := dep("web", 4, image("web:1"))
	v2 := dep("web", 4, image("web:2"), func(d *spec.Deployment) {
		surge := spec.FromInt(2)
		d.Spec.Strategy.RollingUpdate = &spec.RollingUpdateDeployment{MaxSurge: &surge}
	})
	nodes := cluster(3, 1)
	old := running(plan(desired(v1), View{Nodes: nodes}))
	dup := old[0]
	dup.Node = "n002"
	if dup.Node == old[0].Node {
		dup.Node = "n001"
	}
	p := plan(desired(v2), View{Nodes: nodes, Instances: append(old, dup)})
	if len(p.Assignments) != 4 || p.Assignments[0].SpecHash != spec.InstanceHash(nil, v2) {
		t.Fatalf("assignments %+v, want 4 of the new spec", p.Assignments)
	}
	if len(p.Rollouts) != 1 {
		t.Fatalf("rollouts %+v, want one", p.Rollouts)
	}
	r := p.Rollouts[0]
	if r.Workload != "web" || r.Replicas != 4 || r.MaxSurge != 2 || r.MaxUnavailable != 1 || r.Strategy != spec.StrategyRollingUpdate || len(r.Outdated) != 4 {
		t.Errorf("rollout %+v, want 4 outdated, surge 2, unavailable 1 (25%% of 4)", r)
	}
	if len(p.Stop) != 1 || p.Stop[0].Instance != dup || !strings.HasPrefix(p.Stop[0].Reason, "duplicate of outdated instance") {
		t.Errorf("stops %+v, want only the duplicate of an outdated instance", p.Stop)
	}
	// Scaled to zero at the same time: nothing to roll, everything stops.
	zero := dep("web", 0, image("web:2"))
	p = plan(desired(zero), View{Nodes: nodes, Instances: old})
	if len(p.Rollouts) != 0 || len(p.Stop) != 4 || p.Stop[0].Reason != "scaled to zero" {
		t.Errorf("scaled to zero: rollouts %+v stops %+v", p.Rollouts, p.Stop)
	}
}

func TestRolloutBounds(t *testing.T) {
	ptr := func(v spec.IntOrString) *spec.IntOrString { return &v }
	rolling := func(surge, unavailable *spec.IntOrString) spec.DeploymentStrategy {
		return spec.DeploymentStrategy{Type: spec.StrategyRollingUpdate, RollingUpdate: &spec.RollingUpdateDeployment{MaxSurge: surge, MaxUnavailable: unavailable}}
	}
	tests := []struct {
		name                 string
		strategy             spec.DeploymentStrategy
		replicas             int
		wantType             string
		surge, wantUnavailab int
	}{
		{"defaults are 25% each", spec.DeploymentStrategy{}, 10, spec.StrategyRollingUpdate, 3, 2},
		{"surge rounds up, unavailable down", rolling(ptr(spec.FromString("10%")), ptr(spec.FromString("10%"))), 15, spec.StrategyRollingUpdate, 2, 1},
		{"counts as given", rolling(ptr(spec.FromInt(0)), ptr(spec.FromInt(3))), 5, spec.StrategyRollingUpdate, 0, 3},
		{"both zero allows one unavailable", rolling(ptr(spec.FromInt(0)), ptr(spec.FromString("0%"))), 5, spec.StrategyRollingUpdate, 0, 1},
		{"one replica by default", spec.DeploymentStrategy{}, 1, spec.StrategyRollingUpdate, 1, 0},
		{"malformed counts as the default", rolling(ptr(spec.FromString("lots")), nil), 4, spec.StrategyRollingUpdate, 1, 1},
		{"recreate", spec.DeploymentStrategy{Type: spec.StrategyRecreate}, 4, spec.StrategyRecreate, 0, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typ, surge, unavailable := RolloutBounds(tt.strategy, tt.replicas)
			if typ != tt.wantType || surge != tt.surge || unavailable != tt.wantUnavailab {
				t.Errorf("RolloutBounds = %s %d %d, want %s %d %d", typ, surge, unavailable, tt.wantType, tt.surge, tt.wantUnavailab)
			}
		})
	}
}

func TestUnplacedCountsEveryNode(t *testing.T) {
	nodes := []Node{dead(node("a", "z0")), small("b", "z0"), small("c", "z1"), node("d", "z1"), node("e", "z1")}
	web := dep("web", 3, requests("", "2Gi"), antiAffinity("web", LabelHostname))
	p := plan(desired(web), View{Nodes: nodes})
	want := "0/5 nodes are available: 2 insufficient memory (less than 2Gi free on each), 2 node(s) didn't match pod anti-affinity rules, 1 node(s) not alive."
	if len(p.Unplaced) != 1 || p.Unplaced[0].Reason != want {
		t.Errorf("unplaced %+v, want slot 2 with %q", p.Unplaced, want)
	}
}

func TestExplain(t *testing.T) {
	nodes := []Node{dead(node("a", "z0")), small("b", "z0"), node("c", "z1"), node("d", "z1")}
	web := dep("web", 3, requests("", "2Gi"), antiAffinity("web", LabelHostname))
	kept := runningOn(web, 0, "d")
	failed := runningOn(web, 1, "b")
	failed.Running = false
	d := desired(web)
	v := View{Nodes: nodes, Instances: []Instance{kept, failed}}

	e, err := testPlanner.Explain(d, v, "default", "web")
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Replicas) != 3 {
		t.Fatalf("explained %d replicas, want 3", len(e.Replicas))
	}
	r0, r1, r2 := e.Replicas[0], e.Replicas[1], e.Replicas[2]
	if !r0.Kept || r0.Node != "d" || !strings.HasPrefix(r0.Summary, "kept on d") {
		t.Errorf("slot 0: %+v, want kept on d", r0)
	}
	if r1.Node != "c" || r1.Kept || len(r1.Candidates) == 0 || r1.Candidates[0].Node != "c" {
		t.Errorf("slot 1: %+v, want placed on c, the only feasible candidate", r1)
	}
	if len(r1.Rejected) == 0 || r1.Rejected[0] != (Rejection{Node: "b", Reason: "running copy cannot stay: not running"}) {
		t.Errorf("slot 1 rejections %+v, want the failed copy on b first", r1.Rejected)
	}
	if r2.Node != "" || r2.Summary != "0/4 nodes are available: 2 node(s) didn't match pod anti-affinity rules, 1 insufficient memory (less than 2Gi free on each), 1 node(s) not alive." {
		t.Errorf("slot 2: %+v", r2)
	}
	reasons := map[string]string{}
	for _, rj := range r2.Rejected {
		reasons[rj.Node] = rj.Reason
	}
	wantReasons := map[string]string{
		"a": "node(s) not alive", "b": "insufficient memory",
		"c": "node(s) didn't match pod anti-affinity rules", "d": "node(s) didn't match pod anti-affinity rules",
	}
	for n, want := range wantReasons {
		if reasons[n] != want {
			t.Errorf("slot 2 on %s: %q, want %q", n, reasons[n], want)
		}
	}
	// Explaining must not change the plan.
	p := plan(d, v)
	for i, r := range e.Replicas {
		if got := outcome(p, "web", i); r.Node != "" && got != r.Node {
			t.Errorf("slot %d explained on %s but planned on %s", i, r.Node, got)
		}
	}
	if _, err := testPlanner.Explain(d, v, "default", "nope"); !errors.Is(err, ErrUnknownWorkload) {
		t.Errorf("Explain of an unknown workload: %v, want ErrUnknownWorkload", err)
	}
}

// The scoring breakdown adds up and the winner has the highest total.
func TestExplainScores(t *testing.T) {
	e, err := testPlanner.Explain(desired(dep("web", 6, requests("500m", "1Gi"))), View{Nodes: cluster(4, 2)}, "default", "web")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range e.Replicas {
		if len(r.Candidates) != sampleSize {
			t.Fatalf("slot %d scored %d candidates, want %d", r.Slot, len(r.Candidates), sampleSize)
		}
		best := r.Candidates[0]
		for _, c := range r.Candidates {
			var sum int64
			for _, s := range c.Scores {
				sum += s.Points * s.Weight
			}
			if sum != c.Total {
				t.Errorf("slot %d on %s: scores add to %d, total says %d", r.Slot, c.Node, sum, c.Total)
			}
			if c.Total > best.Total {
				best = c
			}
		}
		if r.Node != best.Node {
			t.Errorf("slot %d placed on %s, but %s scored highest", r.Slot, r.Node, best.Node)
		}
	}
}

// A small plan, byte for byte, so that any change to placement shows up in review.
func TestPlanGolden(t *testing.T) {
	nodes := []Node{node("a", "z0"), node("b", "z0"), small("c", "z1"), node("d", "z1"), dead(node("e", "z2"))}
	deps := []*spec.Deployment{
		dep("api", 3, requests("500m", "512Mi"), antiAffinity("api", LabelHostname), ports(8080)),
		dep("cache", 2, requests("250m", "1Gi"), spread(LabelZone, 1, spec.DoNotSchedule)),
		dep("web", 4, requests("200m", "256Mi"), podAffinity("cache", LabelZone), preferredNodeAffinity(10, req(LabelZone, spec.OpIn, "z0"))),
		dep("batch", 2, inNamespace("jobs"), requests("3", "1Gi")),
	}
	golden(t, "placement.golden", append(mustJSON(t, plan(desired(deps...), View{Nodes: nodes})), '\n'))
}

func TestHashFunc(t *testing.T) {
	d := desired(dep("web", 1))
	v := View{Nodes: cluster(1, 1)}
	a := New(func(*spec.Set, *spec.Deployment) string { return "fixed" }).Plan(d, v).Assignments[0]
	if a.SpecHash != "fixed" || a.InstanceID != InstanceID("default", "web", "fixed", 0) {
		t.Errorf("a custom hash gives %+v", a)
	}
	want := spec.InstanceHash(d.Objects, d.Objects.Deployments[0])
	if got := Plan(d, v).Assignments[0].SpecHash; got != want {
		t.Errorf("Plan hashes the spec as %q, spec.InstanceHash as %q", got, want)
	}
	if e, err := Explain(d, v, "default", "web"); err != nil || e.SpecHash != want || e.Replicas[0].Node != "n000" {
		t.Errorf("Explain = %+v, %v", e, err)
	}
}

// An ID that names a slot in another spelling ("+12" for 12) still counts as the slot's
// copy, but the plan assigns the slot under its plain ID.
func TestPlanAssignsPlainIDs(t *testing.T) {
	fresh := plan(desired(dep("web", 13)), View{Nodes: cluster(3, 1)})
	view := running(fresh)
	a := fresh.Assignments[12]
	prefix := strings.TrimSuffix(a.InstanceID, "12")
	view[12].ID = prefix + "+12"
	p := plan(desired(dep("web", 13)), View{Nodes: cluster(3, 1), Instances: view})
	if got := p.Assignments[12]; got.InstanceID != a.InstanceID || got.Node != a.Node {
		t.Errorf("slot 12 with a copy named %s: assigned %s on %s, want %s on %s", view[12].ID, got.InstanceID, got.Node, a.InstanceID, a.Node)
	}
}
