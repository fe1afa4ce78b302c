package planner

import (
	"math/rand"
	"strconv"
	"testing"

	"github.com/shoalhq/shoal/spec"
)

// bigCluster is the benchmark's cluster: nodes of 16 cores and 64 GiB over 10 zones and
// 5 pools.
func bigCluster(n int) []Node {
	nodes := make([]Node, n)
	for i := range nodes {
		name := "node-" + strconv.Itoa(i)
		nodes[i] = Node{
			Name: name,
			Labels: map[string]string{
				LabelHostname: name,
				LabelZone:     "zone-" + strconv.Itoa(i%10),
				"pool":        "pool-" + strconv.Itoa(i%5),
			},
			Allocatable: Resources{MilliCPU: 16000, MemoryBytes: 64 * gi},
			Alive:       true,
		}
	}
	return nodes
}

// bigDesired is `workloads` Deployments of `replicas` each with CPU and memory requests;
// every other one selects a pool, every tenth keeps its instances on distinct hosts.
func bigDesired(rng *rand.Rand, workloads int, replicas int32) spec.Desired {
	deps := make([]*spec.Deployment, workloads)
	for i := range deps {
		mods := []func(*spec.Deployment){
			requests(strconv.Itoa(100+rng.Intn(5)*100)+"m", strconv.Itoa(128<<rng.Intn(4))+"Mi"),
		}
		name := "app-" + strconv.Itoa(i)
		if i%2 == 0 {
			mods = append(mods, nodeSelector("pool", "pool-"+strconv.Itoa(rng.Intn(5))))
		}
		if i%10 == 0 {
			mods = append(mods, antiAffinity(name, LabelHostname))
		}
		deps[i] = dep(name, replicas, mods...)
	}
	return desired(deps...)
}

func BenchmarkPlan100kReplicas5000Nodes(b *testing.B) {
	d := bigDesired(rand.New(rand.NewSource(1)), 2000, 50)
	v := View{Nodes: bigCluster(5000)}
	b.ReportAllocs()
	var p Placement
	for b.Loop() {
		p = plan(d, v)
	}
	if len(p.Assignments) != 100_000 {
		b.Fatalf("placed %d of 100000 replicas; first unplaced: %+v", len(p.Assignments), p.Unplaced[0])
	}
}

// BenchmarkJoinMovement100Nodes measures what a node joining a 100-node cluster moves,
// as a multiple of the ideal: the newcomer's fair share, 1/101 of the replicas.
// fresh-moved/ideal is for placements with nothing running yet (the hashing alone);
// kept-moved/ideal is with every instance running, where stickiness should move none.
func BenchmarkJoinMovement100Nodes(b *testing.B) {
	const n, seeds = 100, 10
	nodes := bigCluster(n + 1)
	var fresh, kept float64
	for b.Loop() {
		fresh, kept = 0, 0
		for seed := range int64(seeds) {
			d := bigDesired(rand.New(rand.NewSource(seed)), 50, 20)
			before := plan(d, View{Nodes: nodes[:n]})
			movedFresh, both := moved(before, plan(d, View{Nodes: nodes}))
			movedKept, _ := moved(before, plan(d, View{Nodes: nodes, Instances: running(before)}))
			fresh += float64(movedFresh) / float64(both)
			kept += float64(movedKept) / float64(both)
		}
	}
	ideal := 1.0 / (n + 1)
	b.ReportMetric(fresh/seeds/ideal, "fresh-moved/ideal")
	b.ReportMetric(kept/seeds/ideal, "kept-moved/ideal")
}

// BenchmarkPlan100kReplicas5000NodesRunning is the daemon's steady state: the same cluster
// with every instance already running, so that each replica is checked and kept.
func BenchmarkPlan100kReplicas5000NodesRunning(b *testing.B) {
	d := bigDesired(rand.New(rand.NewSource(1)), 2000, 50)
	v := View{Nodes: bigCluster(5000)}
	v.Instances = running(plan(d, v))
	b.ReportAllocs()
	var p Placement
	for b.Loop() {
		p = plan(d, v)
	}
	if len(p.Assignments) != 100_000 || len(p.Stop) != 0 {
		b.Fatalf("placed %d of 100000 replicas and stopped %d", len(p.Assignments), len(p.Stop))
	}
}

// BenchmarkPlanOverloaded is a cluster asked for three times what it holds: 200 nodes,
// 1000 Deployments of 20 replicas, one in ten with a host port. Nearly half the replicas
// cannot be placed, for want of cpu or a free port: this measures the cost of saying why.
func BenchmarkPlanOverloaded(b *testing.B) {
	d := bigDesired(rand.New(rand.NewSource(2)), 1000, 20)
	for i, dp := range d.Objects.Deployments {
		if i%10 == 5 {
			ports(8000 + int32(i%3))(dp)
		}
	}
	v := View{Nodes: bigCluster(200)}
	b.ReportAllocs()
	var p Placement
	for b.Loop() {
		p = plan(d, v)
	}
	if len(p.Unplaced) < 500 {
		b.Fatalf("%d unplaced entries, want an overloaded cluster", len(p.Unplaced))
	}
}
