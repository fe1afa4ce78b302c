package planner

import (
	"runtime"
	"strings"
	"testing"
)

// unplacedReplicas sums the replicas the Unplaced entries stand for.
func unplacedReplicas(p Placement) int {
	n := 0
	for _, u := range p.Unplaced {
		n += u.Replicas()
	}
	return n
}

// TestInstancesPerNodeCapped is the second attack of issue #8: 100,000 replicas that
// request nothing were placed 50,000 on each of two nodes. A node takes at most its
// MaxInstances (110 by default, as the kubelet's maxPods); the rest are unplaced with the
// reason, none dropped.
func TestInstancesPerNodeCapped(t *testing.T) {
	p := plan(desired(dep("flood", 100_000)), View{Nodes: cluster(2, 1)})
	perNode := map[string]int{}
	for _, a := range p.Assignments {
		perNode[a.Node]++
	}
	for n, c := range perNode {
		if c > DefaultMaxInstances {
			t.Errorf("node %s got %d instances, more than %d", n, c, DefaultMaxInstances)
		}
	}
	if len(p.Assignments) != 2*DefaultMaxInstances {
		t.Errorf("placed %d, want the two nodes full: %d", len(p.Assignments), 2*DefaultMaxInstances)
	}
	if got := len(p.Assignments) + unplacedReplicas(p); got != 100_000 {
		t.Errorf("placed and unplaced replicas add up to %d, want 100000", got)
	}
	for _, u := range p.Unplaced {
		if u.Reason != "0/2 nodes are available: 2 too many instances (each runs its maximum; used most by default/flood)." {
			t.Fatalf("unplaced %+v: want the reason to say the nodes are full", u)
		}
	}
}

func TestMaxInstancesPerNode(t *testing.T) {
	nodes := cluster(3, 1)
	nodes[0].MaxInstances = 1
	nodes[1].MaxInstances = 4
	nodes[2].Alive = false
	p := plan(desired(dep("a", 3), dep("b", 3)), View{Nodes: nodes})
	perNode := map[string]int{}
	for _, a := range p.Assignments {
		perNode[a.Node]++
	}
	if perNode[nodeName(0)] != 1 || perNode[nodeName(1)] != 4 || len(perNode) != 2 {
		t.Errorf("instances per node %v, want n000:1 n001:4", perNode)
	}
	if unplacedReplicas(p) != 1 || !strings.Contains(p.Unplaced[0].Reason, "2 too many instances") {
		t.Errorf("unplaced %+v, want one replica refused for too many instances", p.Unplaced)
	}
}

// TestRunningBeyondMaxInstancesStop: a node that runs more than it may (its limit was
// lowered, or views diverged) keeps only its MaxInstances; the rest move or stop.
func TestRunningBeyondMaxInstancesStop(t *testing.T) {
	d := desired(dep("web", 6))
	nodes := cluster(1, 1)
	before := plan(d, View{Nodes: nodes})
	if len(before.Assignments) != 6 {
		t.Fatalf("placed %d of 6", len(before.Assignments))
	}
	nodes[0].MaxInstances = 4
	after := plan(d, View{Nodes: nodes, Instances: running(before)})
	if len(after.Assignments) != 4 || len(after.Stop) != 2 || unplacedReplicas(after) != 2 {
		t.Errorf("assigned %d, stopped %d, unplaced %d; want 4, 2, 2", len(after.Assignments), len(after.Stop), unplacedReplicas(after))
	}
}

// TestPlanMemoryBoundedByPlacements: what a plan allocates grows with what can be placed,
// not with spec.replicas. A billion replicas on two nodes used to ask for 72 GB.
func TestPlanMemoryBoundedByPlacements(t *testing.T) {
	allocated := func(replicas int32) uint64 {
		d, v := desired(dep("flood", replicas)), View{Nodes: cluster(2, 1)}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		p := plan(d, v)
		runtime.ReadMemStats(&after)
		if got := len(p.Assignments) + unplacedReplicas(p); got != int(replicas) {
			t.Fatalf("%d replicas: placed and unplaced add up to %d", replicas, got)
		}
		return after.TotalAlloc - before.TotalAlloc
	}
	small, huge := allocated(1_000), allocated(1_000_000_000)
	if huge > 2*small+64<<10 {
		t.Errorf("planning 10⁹ replicas allocated %d bytes, 10³ replicas %d: memory must not grow with replicas", huge, small)
	}
	t.Logf("allocated %d bytes for 10³ replicas, %d for 10⁹", small, huge)
}

func TestExplainReportsReplicasBeyondCapacity(t *testing.T) {
	nodes := cluster(2, 1)
	nodes[0].MaxInstances, nodes[1].MaxInstances = 2, 3
	e, err := Explain(desired(dep("web", 1000)), View{Nodes: nodes}, "default", "web")
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Replicas) != 5 || e.Beyond == nil || e.Beyond.Slot != 5 || e.Beyond.Replicas() != 995 ||
		e.Beyond.Reason != "0/2 nodes are available: 2 too many instances (each runs its maximum; used most by default/web)." {
		t.Errorf("explained %d replicas and beyond %+v; want 5 and the other 995 as one run, with the reason", len(e.Replicas), e.Beyond)
	}
}
