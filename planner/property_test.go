package planner

import (
	"bytes"
	"cmp"
	"math/rand"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/shoalhq/shoal/spec"
)

// The property tests draw random clusters and workloads from seeded local generators, so a
// failure names the seed that reproduces it.

const propertySeeds = 200

// randomNodes is n nodes of 2 to 16 cores over 3 zones, half with disk=ssd, each with a
// numeric "gen" label; about one in twenty is dead.
func randomNodes(rng *rand.Rand, n int) []Node {
	nodes := make([]Node, n)
	for i := range nodes {
		nd := node("r"+strconv.Itoa(i), "z"+strconv.Itoa(rng.Intn(3)), "gen", strconv.Itoa(1+rng.Intn(5)))
		if rng.Intn(2) == 0 {
			nd.Labels["disk"] = "ssd"
		}
		cores := int64(2 << rng.Intn(4))
		nd.Allocatable = Resources{MilliCPU: cores * 1000, MemoryBytes: cores * 2 * gi}
		nd.Alive = rng.Intn(20) != 0
		nodes[i] = nd
	}
	return nodes
}

// constraintKinds selects which constraints randomDesired may draw.
type constraintKinds struct {
	podAffinity bool
	spread      bool
}

var allConstraints = constraintKinds{podAffinity: true, spread: true}

// randomDeployment draws one Deployment with a random mix of constraints.
func randomDeployment(rng *rand.Rand, name string, others []string, kinds constraintKinds) *spec.Deployment {
	mods := []func(*spec.Deployment){
		requests(strconv.Itoa(100*(1+rng.Intn(10)))+"m", strconv.Itoa(64*(1+rng.Intn(16)))+"Mi"),
	}
	maybe := func(pct int, m func(*spec.Deployment)) {
		if rng.Intn(100) < pct {
			mods = append(mods, m)
		}
	}
	maybe(20, inNamespace("other"))
	maybe(20, nodeSelector("disk", "ssd"))
	maybe(10, requiredNodeAffinity(spec.LabelSelectorRequirement{Key: "gen", Operator: spec.OpGt, Values: []string{"2"}}))
	maybe(15, preferredNodeAffinity(50, spec.LabelSelectorRequirement{Key: LabelZone, Operator: spec.OpIn, Values: []string{"z1"}}))
	maybe(25, antiAffinity(name, LabelHostname))
	maybe(5, antiAffinity(name, LabelZone))
	maybe(15, ports(8080+int32(rng.Intn(3))))
	maybe(15, preferredPodAffinity(30, name, LabelHostname, true))
	if len(others) > 0 {
		maybe(10, preferredPodAffinity(40, others[rng.Intn(len(others))], LabelZone, false))
	}
	if kinds.podAffinity && len(others) > 0 {
		maybe(10, podAffinity(others[rng.Intn(len(others))], LabelZone))
		maybe(5, podAffinity(name, LabelZone))
	}
	if kinds.spread {
		maybe(10, spread(LabelZone, 1, spec.DoNotSchedule))
		maybe(10, spread(LabelHostname, 1, spec.ScheduleAnyway))
	}
	return dep(name, int32(rng.Intn(13)), mods...)
}

func randomDesired(rng *rand.Rand, kinds constraintKinds) spec.Desired {
	var deps []*spec.Deployment
	var names []string
	for i := range 3 + rng.Intn(10) {
		name := "w" + strconv.Itoa(i)
		deps = append(deps, randomDeployment(rng, name, names, kinds))
		names = append(names, name)
	}
	return desired(deps...)
}

func shuffled[T any](rng *rand.Rand, s []T) []T {
	s = slices.Clone(s)
	rng.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
	return s
}

// messyView is a view as a partition might leave it: the instances of a plan, some
// duplicated onto other nodes, some not ready or failed, some of an older spec, and some
// beyond the replica count.
func messyView(rng *rand.Rand, nodes []Node, p Placement) View {
	var instances []Instance
	for i, in := range running(p) {
		slot := p.Assignments[i].Slot
		if rng.Intn(10) == 0 {
			continue
		}
		in.Ready = rng.Intn(5) != 0
		in.Running = rng.Intn(10) != 0
		instances = append(instances, in)
		if rng.Intn(6) == 0 {
			dup := in
			dup.Node = nodes[rng.Intn(len(nodes))].Name
			dup.Ready = rng.Intn(2) == 0
			instances = append(instances, dup)
		}
		if rng.Intn(8) == 0 {
			old := in
			old.SpecHash = "oldhash"
			old.ID = InstanceID(in.Namespace, in.Workload, old.SpecHash, slot)
			instances = append(instances, old)
		}
		if rng.Intn(8) == 0 {
			extra := in
			extra.ID = InstanceID(in.Namespace, in.Workload, in.SpecHash, 20+rng.Intn(5))
			instances = append(instances, extra)
		}
	}
	// Gossip may briefly report a member twice, say alive and dead.
	nodes = slices.Clone(nodes)
	twice := nodes[rng.Intn(len(nodes))]
	twice.Alive = !twice.Alive
	nodes = append(nodes, twice)
	return View{Nodes: nodes, Instances: instances}
}

func TestPlanIgnoresInputOrder(t *testing.T) {
	for seed := range int64(propertySeeds) {
		rng := rand.New(rand.NewSource(seed))
		nodes := randomNodes(rng, 5+rng.Intn(20))
		d := randomDesired(rng, allConstraints)
		v := messyView(rng, nodes, plan(d, View{Nodes: nodes}))
		want := mustJSON(t, plan(d, v))

		d2 := d
		d2.Objects = &spec.Set{Deployments: shuffled(rng, d.Objects.Deployments)}
		v2 := View{Nodes: shuffled(rng, v.Nodes), Instances: shuffled(rng, v.Instances)}
		if got := mustJSON(t, plan(d2, v2)); !bytes.Equal(got, want) {
			t.Fatalf("seed %d: shuffled inputs changed the placement\nbefore:\n%s\nafter:\n%s", seed, want, got)
		}
	}
}

func TestPlanHardConstraintsHold(t *testing.T) {
	for seed := range int64(propertySeeds) {
		rng := rand.New(rand.NewSource(seed))
		nodes := randomNodes(rng, 3+rng.Intn(25))
		d := randomDesired(rng, allConstraints)
		fresh := plan(d, View{Nodes: nodes})
		checkPlacement(t, seed, d, nodes, fresh, true)
		// Kept instances must satisfy the same constraints, except spread, which never evicts.
		messy := messyView(rng, nodes, fresh)
		checkPlacement(t, seed, d, messy.Nodes, plan(d, messy), false)
	}
}

// checkPlacement asserts every invariant of a placement that does not depend on history.
// spreadHolds asks to check topology spread too, which holds for plans that kept nothing.
func checkPlacement(t *testing.T, seed int64, d spec.Desired, nodes []Node, p Placement, spreadHolds bool) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("seed %d: "+format, append([]any{seed}, args...)...)
	}
	byName := map[string]Node{}
	for _, n := range nodes {
		// A node reported twice counts as alive if either report says so.
		if prev, dup := byName[n.Name]; !dup || n.Alive && !prev.Alive {
			byName[n.Name] = n
		}
	}
	deps := map[string]*spec.Deployment{}
	for _, dp := range d.Objects.Deployments {
		deps[namespaceOf(dp)+"/"+dp.Metadata.Name] = dp
	}
	// Lists come sorted as documented.
	bySlot := func(ns, wl string, slot int) string { return ns + "\x00" + wl + "\x00" + strconv.Itoa(1e9+slot) }
	if !slices.IsSortedFunc(p.Assignments, func(a, b Assignment) int {
		return strings.Compare(bySlot(a.Namespace, a.Workload, a.Slot), bySlot(b.Namespace, b.Workload, b.Slot))
	}) || !slices.IsSortedFunc(p.Unplaced, func(a, b Unplaced) int {
		return strings.Compare(bySlot(a.Namespace, a.Workload, a.Slot), bySlot(b.Namespace, b.Workload, b.Slot))
	}) || !slices.IsSortedFunc(p.Stop, func(a, b Stop) int {
		return cmp.Or(strings.Compare(a.Instance.Node, b.Instance.Node), compareInstances(a.Instance, b.Instance))
	}) {
		fail("placement lists are not sorted")
	}
	// Every replica is placed or explained, exactly once, under the right ID.
	seen := map[string]bool{}
	slotsOf := map[string]int{}
	note := func(ns, wl, id, hash string, slot int) {
		dp := deps[ns+"/"+wl]
		if dp == nil {
			fail("placement names unknown workload %s/%s", ns, wl)
		}
		if want := InstanceID(ns, wl, spec.InstanceHash(d.Objects, dp), slot); id != want || hash != "" && hash != spec.InstanceHash(d.Objects, dp) {
			fail("slot %d of %s/%s has ID %s, want %s", slot, ns, wl, id, want)
		}
		if seen[ns+"/"+id] {
			fail("%s/%s appears twice", ns, id)
		}
		seen[ns+"/"+id] = true
		slotsOf[ns+"/"+wl]++
	}
	for _, a := range p.Assignments {
		note(a.Namespace, a.Workload, a.InstanceID, a.SpecHash, a.Slot)
	}
	for _, u := range p.Unplaced {
		note(u.Namespace, u.Workload, u.InstanceID, "", u.Slot)
		if u.Reason == "" {
			fail("unplaced %s has no reason", u.InstanceID)
		}
	}
	for key, dp := range deps {
		if slotsOf[key] != replicasOf(dp) {
			fail("%s has %d slots accounted for, want %d", key, slotsOf[key], replicasOf(dp))
		}
	}

	used := map[string]Resources{}
	portsOn := map[string]map[uint32]bool{}
	for _, a := range p.Assignments {
		n, ok := byName[a.Node]
		ps := &deps[a.Namespace+"/"+a.Workload].Spec.Template.Spec
		switch {
		case !ok || !n.Alive:
			fail("%s placed on %s, which is not an alive node", a.InstanceID, a.Node)
		case !spec.MatchesLabels(ps.NodeSelector, n.Labels):
			fail("%s on %s breaks its nodeSelector", a.InstanceID, a.Node)
		case ps.Affinity != nil && ps.Affinity.NodeAffinity != nil && !ps.Affinity.NodeAffinity.Required.Matches(n.Labels):
			fail("%s on %s breaks its required node affinity", a.InstanceID, a.Node)
		}
		r := podRequests(ps)
		u := used[a.Node]
		u.MilliCPU += r.MilliCPU
		u.MemoryBytes += r.MemoryBytes
		used[a.Node] = u
		if u.MilliCPU > n.Allocatable.MilliCPU || u.MemoryBytes > n.Allocatable.MemoryBytes {
			fail("node %s is over capacity: %+v of %+v", a.Node, u, n.Allocatable)
		}
		for _, port := range podPorts(ps, false) {
			if portsOn[a.Node] == nil {
				portsOn[a.Node] = map[uint32]bool{}
			}
			if portsOn[a.Node][port] {
				fail("port %d taken twice on %s", port>>1, a.Node)
			}
			portsOn[a.Node][port] = true
		}
	}

	// matching lists the other assignments a pod-affinity term of a's workload selects.
	domain := func(nodeName, key string) (string, bool) {
		if key == LabelHostname {
			return nodeName, true
		}
		v, ok := byName[nodeName].Labels[key]
		return v, ok
	}
	matching := func(a Assignment, term spec.PodAffinityTerm) (inDomain, anywhere int) {
		own, ok := domain(a.Node, term.TopologyKey)
		for _, b := range p.Assignments {
			if b == a || !slices.Contains(termNamespaces(term, a.Namespace), b.Namespace) ||
				!term.LabelSelector.Matches(deps[b.Namespace+"/"+b.Workload].Spec.Template.Metadata.Labels) {
				continue
			}
			anywhere++
			if d, ok2 := domain(b.Node, term.TopologyKey); ok && ok2 && d == own {
				inDomain++
			}
		}
		return inDomain, anywhere
	}
	for _, a := range p.Assignments {
		dp := deps[a.Namespace+"/"+a.Workload]
		aff := dp.Spec.Template.Spec.Affinity
		if aff == nil {
			continue
		}
		if aff.PodAntiAffinity != nil {
			for _, term := range aff.PodAntiAffinity.Required {
				if in, _ := matching(a, term); in > 0 {
					fail("%s on %s shares a %s with an instance its anti-affinity excludes", a.InstanceID, a.Node, term.TopologyKey)
				}
			}
		}
		if aff.PodAffinity != nil {
			for _, term := range aff.PodAffinity.Required {
				in, anywhere := matching(a, term)
				selfMatch := term.LabelSelector.Matches(dp.Spec.Template.Metadata.Labels)
				if in == 0 && !(selfMatch && anywhere == 0) {
					fail("%s on %s has no instance its affinity needs in its %s", a.InstanceID, a.Node, term.TopologyKey)
				}
			}
		}
	}
	if spreadHolds {
		checkSpread(t, seed, deps, byName, p)
	}
}

// checkSpread asserts maxSkew of every DoNotSchedule constraint over the domains the
// workload may use.
func checkSpread(t *testing.T, seed int64, deps map[string]*spec.Deployment, byName map[string]Node, p Placement) {
	t.Helper()
	for key, dp := range deps {
		ps := &dp.Spec.Template.Spec
		for _, c := range ps.TopologySpreadConstraints {
			if c.WhenUnsatisfiable != spec.DoNotSchedule {
				continue
			}
			counts := map[string]int{}
			for _, n := range byName {
				if n.Alive && spec.MatchesLabels(ps.NodeSelector, n.Labels) &&
					(ps.Affinity == nil || ps.Affinity.NodeAffinity == nil || ps.Affinity.NodeAffinity.Required.Matches(n.Labels)) {
					counts[n.Labels[c.TopologyKey]] += 0
				}
			}
			for _, a := range p.Assignments {
				if a.Namespace+"/"+a.Workload == key {
					counts[byName[a.Node].Labels[c.TopologyKey]]++
				}
			}
			lo, hi := 1<<30, 0
			for _, c := range counts {
				lo, hi = min(lo, c), max(hi, c)
			}
			if hi-lo > int(c.MaxSkew) {
				t.Fatalf("seed %d: %s spreads %v over %s, skew above %d", seed, key, counts, c.TopologyKey, c.MaxSkew)
			}
		}
	}
}

// moved counts the replicas of before that are placed in both plans but on different nodes.
func moved(before, after Placement) (moves, both int) {
	now := nodesOf(after)
	for id, n := range nodesOf(before) {
		if m, ok := now[id]; ok {
			both++
			if m != n {
				moves++
			}
		}
	}
	return moves, both
}

// joinMovement plans a random cluster of n nodes and the same plus one, without history,
// and returns the fraction of replicas that moved.
func joinMovement(rng *rand.Rand, n int) float64 {
	nodes := randomNodes(rng, n+1)
	for i := range nodes {
		nodes[i].Alive = true
	}
	d := randomDesired(rng, constraintKinds{})
	moves, both := moved(plan(d, View{Nodes: nodes[:n]}), plan(d, View{Nodes: nodes}))
	if both == 0 {
		return 0
	}
	return float64(moves) / float64(both)
}

// TestJoinMovesAboutOneNth checks the hashing itself: with nothing running yet (a fresh
// deploy, or daemons whose views differ by one member), one more node moves about 1/N of
// the replicas, not all of them.
func TestJoinMovesAboutOneNth(t *testing.T) {
	const clusters, n = 300, 20
	rng := rand.New(rand.NewSource(7))
	total := 0.0
	for range clusters {
		total += joinMovement(rng, n)
	}
	mean := total / clusters
	t.Logf("mean fraction moved by a join to %d nodes: %.4f (ideal %.4f)", n, mean, 1.0/(n+1))
	if bound := 2.0/n + 0.02; mean > bound {
		t.Errorf("a join moved %.4f of replicas on average, want at most %.4f", mean, bound)
	}
}

// settled plans a random cluster and returns the desired state, the nodes and the view once
// the agents have carried the plan out.
func settled(rng *rand.Rand, n int, kinds constraintKinds) (spec.Desired, []Node, View) {
	nodes := randomNodes(rng, n)
	d := randomDesired(rng, kinds)
	return d, nodes, View{Nodes: nodes, Instances: running(plan(d, View{Nodes: nodes}))}
}

// With instances running, a join moves nothing: healthy instances stay.
func TestJoinMovesNothingRunning(t *testing.T) {
	for seed := range int64(propertySeeds) {
		rng := rand.New(rand.NewSource(seed))
		d, nodes, v := settled(rng, 3+rng.Intn(20), allConstraints)
		before := plan(d, v)
		v.Nodes = append(slices.Clone(nodes), node("joiner", "z0"))
		after := plan(d, v)
		if moves, _ := moved(before, after); moves != 0 || len(after.Stop) != 0 {
			t.Fatalf("seed %d: a join moved %d running instances and stopped %+v", seed, moves, after.Stop)
		}
	}
}

// A node leaving moves only its own instances.
func TestLeaveMovesOnlyItsOwn(t *testing.T) {
	for seed := range int64(propertySeeds) {
		rng := rand.New(rand.NewSource(seed))
		// Required pod affinity is left out: losing the last partner in a zone rightly moves
		// the instances that need it.
		d, nodes, v := settled(rng, 3+rng.Intn(20), constraintKinds{spread: true})
		before := plan(d, v)
		gone := nodes[rng.Intn(len(nodes))].Name
		v.Nodes = slices.DeleteFunc(slices.Clone(nodes), func(n Node) bool { return n.Name == gone })
		after := nodesOf(plan(d, v))
		for id, n := range nodesOf(before) {
			if m, ok := after[id]; ok && m != n && n != gone {
				t.Fatalf("seed %d: %s moved from %s to %s when %s left", seed, id, n, m, gone)
			}
		}
	}
}

// Editing one Deployment moves no other Deployment's instances.
func TestEditMovesOnlyTheEdited(t *testing.T) {
	for seed := range int64(propertySeeds) {
		rng := rand.New(rand.NewSource(seed))
		// Required pod affinity is left out: an instance that must share a zone with the
		// edited workload rightly follows it when the edit moves it.
		d, _, v := settled(rng, 3+rng.Intn(20), constraintKinds{spread: true})
		before := plan(d, v)
		deps := slices.Clone(d.Objects.Deployments)
		i := rng.Intn(len(deps))
		edited := *deps[i]
		edited.Spec.Template.Spec.Containers = slices.Clone(edited.Spec.Template.Spec.Containers)
		edited.Spec.Template.Spec.Containers[0].Image += "-v2"
		edited.Spec.Template.Spec.Containers[0].Resources.Requests = map[string]spec.Quantity{spec.ResourceCPU: spec.MustQuantity("1500m")}
		deps[i] = &edited
		after := nodesOf(plan(desired(deps...), v))
		for id, n := range nodesOf(before) {
			if m, ok := after[id]; ok && m != n {
				t.Fatalf("seed %d: editing %s moved %s from %s to %s", seed, edited.Metadata.Name, id, n, m)
			}
		}
	}
}

// Divergence heals: whatever duplicates and extras a partition left, one plan keeps at most
// one copy of each replica, stops or rolls every other instance, and once the agents carry
// it out the next plan is a fixed point with nothing left to stop.
func TestDivergenceConverges(t *testing.T) {
	for seed := range int64(propertySeeds) {
		rng := rand.New(rand.NewSource(seed))
		nodes := randomNodes(rng, 3+rng.Intn(20))
		d := randomDesired(rng, allConstraints)
		v := messyView(rng, nodes, plan(d, View{Nodes: nodes}))
		p := plan(d, v)

		// Every instance in the view is accounted for; reports of one ID on one node are one
		// instance.
		key := func(in Instance) string { return in.Namespace + "/" + in.ID + "@" + in.Node }
		accounted := map[string]int{}
		assigned := map[string]string{}
		for _, a := range p.Assignments {
			assigned[a.Namespace+"/"+a.InstanceID] = a.Node
		}
		reported := map[string]Instance{}
		for _, in := range v.Instances {
			reported[key(in)] = in
		}
		for k, in := range reported {
			if assigned[in.Namespace+"/"+in.ID] == in.Node {
				accounted[k]++
			}
		}
		for _, s := range p.Stop {
			accounted[key(s.Instance)]++
		}
		for _, r := range p.Rollouts {
			for _, in := range r.Outdated {
				accounted[key(in)]++
			}
		}
		for _, in := range v.Instances {
			if accounted[key(in)] != 1 {
				t.Fatalf("seed %d: instance %+v is kept, stopped or rolled %d times, want once", seed, in, accounted[key(in)])
			}
		}

		// Carry the plan out; outdated instances finish rolling.
		settledView := View{Nodes: v.Nodes, Instances: running(p)}
		next := plan(d, settledView)
		if len(next.Stop) != 0 || len(next.Rollouts) != 0 {
			t.Fatalf("seed %d: after convergence the plan still stops %+v", seed, next.Stop)
		}
		if !bytes.Equal(mustJSON(t, next.Assignments), mustJSON(t, p.Assignments)) {
			t.Fatalf("seed %d: the plan moved instances once carried out", seed)
		}
		for _, dp := range d.Objects.Deployments {
			count := 0
			for _, a := range next.Assignments {
				if a.Workload == dp.Metadata.Name && a.Namespace == namespaceOf(dp) {
					count++
				}
			}
			unplaced := 0
			for _, u := range next.Unplaced {
				if u.Workload == dp.Metadata.Name && u.Namespace == namespaceOf(dp) {
					unplaced++
				}
			}
			if count+unplaced != replicasOf(dp) {
				t.Fatalf("seed %d: %s runs %d and lacks %d, want %d in all", seed, dp.Metadata.Name, count, unplaced, replicasOf(dp))
			}
		}
	}
}

// A daemon plans with nodes indexed once and asks only for its own assignments: the
// placement must be Plan's, with Assignments cut to that node's, whichever node it is,
// and the index must serve any number of plans unchanged.
func TestPlanNodeIsPlanSeenFromOneNode(t *testing.T) {
	for seed := range int64(propertySeeds) {
		rng := rand.New(rand.NewSource(seed))
		nodes := randomNodes(rng, 3+rng.Intn(20))
		d := randomDesired(rng, allConstraints)
		v := messyView(rng, nodes, plan(d, View{Nodes: nodes}))
		full := plan(d, v)
		ix := IndexNodes(v.Nodes)
		p := New(nil)
		for _, n := range append(slices.Clone(nodes[:3]), Node{Name: "not-a-member"}) {
			want := full
			want.Assignments = full.ForNode(n.Name)
			if want.Assignments == nil {
				want.Assignments = []Assignment{}
			}
			if got := p.PlanNode(d, ix, v.Instances, n.Name); !bytes.Equal(mustJSON(t, got), mustJSON(t, want)) {
				t.Fatalf("seed %d, node %s: PlanNode differs from Plan\nwant:\n%s\ngot:\n%s", seed, n.Name, mustJSON(t, want), mustJSON(t, got))
			}
		}
		if got := p.PlanOn(d, ix, v.Instances); !bytes.Equal(mustJSON(t, got), mustJSON(t, full)) {
			t.Fatalf("seed %d: PlanOn on a reused index differs from Plan", seed)
		}
	}
}
