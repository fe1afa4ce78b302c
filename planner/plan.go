package planner

import (
	"cmp"
	"slices"
	"strconv"
	"strings"

	"github.com/shoalhq/shoal/spec"
)

// These numbers shape every placement. They are constants, not configuration, because
// every daemon must compute the same plan: a per-daemon setting would split the cluster.
const (
	// sampleSize is how many feasible nodes are scored per replica: Nomad's limit iterator,
	// "the power of two choices", which balances almost as well as scoring every node.
	sampleSize = 2
	// walkLimit is how many nodes the ring walk examines in a tier before giving up on
	// sampling; scan then examines every node, so no feasible node is ever missed.
	walkLimit = 64
)

// HashFunc returns the spec hash of a Deployment's instances: a short stable text that
// changes whenever what an instance runs changes. spec.InstanceHash is the one daemons use.
type HashFunc func(set *spec.Set, d *spec.Deployment) string

// Planner computes placements. It holds no mutable state: one Planner may serve any number
// of goroutines.
type Planner struct {
	hash HashFunc
	// podNetwork says instances have networks of their own: only hostPorts and the ports
	// of hostNetwork instances are node resources (see spec.PodSpec.HostPorts).
	podNetwork bool
}

// WithPodNetwork returns a Planner like p for a cluster whose instances have networks of
// their own (on) or use their node's (off, New's default). Every daemon of a cluster must
// plan with the same setting.
func (p *Planner) WithPodNetwork(on bool) *Planner {
	q := *p
	q.podNetwork = on
	return &q
}

// New returns a Planner that identifies instance specs by hash; nil means
// spec.InstanceHash, which every daemon must use so that they agree.
func New(hash HashFunc) *Planner {
	if hash == nil {
		hash = spec.InstanceHash
	}
	return &Planner{hash: hash}
}

// Plan is New(nil).Plan: the placement every daemon computes.
func Plan(desired spec.Desired, view View) Placement { return New(nil).Plan(desired, view) }

// Explain is New(nil).Explain.
func Explain(desired spec.Desired, view View, namespace, workload string) (Explanation, error) {
	return New(nil).Explain(desired, view, namespace, workload)
}

// Plan places every replica of every Deployment of desired on the nodes of view.
//
// The steps, each in a fixed order:
//  1. Instances already running with the current spec keep their node when it is alive and
//     still satisfies every hard constraint (resources, ports, node selection, pod
//     affinity and anti-affinity); of several copies of one ID the ready one, then the one
//     on the lowest node name, is kept.
//  2. The other replicas are placed, workloads without required pod affinity first (they
//     are what the others are drawn to), each replica by walking the ring from its slot's
//     position: feasible nodes are sampled, scored and the best taken.
//  3. Everything else running is listed to stop, or, when it runs an older spec, handed
//     to the agent's rollout.
//
// The same desired state and view, in any order, give a byte-identical Placement.
func (p *Planner) Plan(desired spec.Desired, view View) Placement {
	return p.PlanOn(desired, IndexNodes(view.Nodes), view.Instances)
}

// PlanOn is Plan on nodes indexed beforehand: the same placement as Plan with the view of
// those nodes and instances, without indexing the nodes again.
func (p *Planner) PlanOn(desired spec.Desired, nodes *Nodes, instances []Instance) Placement {
	st := newState(p, desired, nodes, instances)
	st.run()
	return st.placement(-1)
}

// PlanNode is PlanOn seen from one node: the same placement, but Assignments holds only
// node's, as ForNode(node) would return them. A daemon runs its own share and needs no
// list of every replica of the cluster built for it.
func (p *Planner) PlanNode(desired spec.Desired, nodes *Nodes, instances []Instance, node string) Placement {
	st := newState(p, desired, nodes, instances)
	st.run()
	n, ok := nodes.byName[node]
	if !ok {
		n = -2 // no slot is on it
	}
	return st.placement(n)
}

func (st *state) run() {
	st.keepRunning()
	st.placeRest()
}

// slotRef names one replica slot during placement.
type slotRef struct {
	w    *workload
	slot int
}

// placeRest places every slot not kept. A failure of a workload's replica fails the rest
// of its replicas in the same pass without more work: nothing changed in between. Slots
// refused for want of a pod they must join are retried after a pass that placed something,
// since what they wait for may have been placed after them.
func (st *state) placeRest() {
	var pending []slotRef
	for _, affine := range []bool{false, true} {
		for _, w := range st.workloads {
			if w.requiresAffinity != affine {
				continue
			}
			for slot := range w.slots {
				if w.slots[slot].node < 0 {
					pending = append(pending, slotRef{w, slot})
				}
			}
		}
	}
	for len(pending) > 0 {
		progress := false
		var retry []slotRef
		var failed *workload
		var failedWhy string
		var failedEx *ReplicaExplanation
		for _, ref := range pending {
			s := &ref.w.slots[ref.slot]
			ex := st.trace.replica(ref.w, ref.slot)
			if ref.w == failed {
				s.setUnplaced(failedWhy)
				ex.copyRejections(failedEx)
			} else if n, why := st.place(ref.w, ref.slot, ex); n >= 0 {
				st.assign(ref.w, ref.slot, n, false)
				progress = true
				continue
			} else {
				failed, failedWhy, failedEx = ref.w, why, ex
				s.setUnplaced(why)
			}
			if ref.w.requiresAffinity {
				retry = append(retry, ref)
			}
		}
		if !progress {
			return
		}
		pending = retry
	}
}

// place finds a node for one slot, or returns -1 and why none fits.
func (st *state) place(w *workload, slot int, ex *ReplicaExplanation) (int32, string) {
	pos := slotPosition(w.slotBase, slot)
	for _, t := range w.static.tiers {
		if sample := st.walk(w, t, pos, ex); len(sample) > 0 {
			return st.choose(w, sample, t.score, ex), ""
		}
	}
	return st.scan(w, pos, ex)
}

// walk visits a tier's nodes in ring order from pos and returns the first sampleSize
// feasible ones, examining at most walkLimit nodes.
func (st *state) walk(w *workload, t *tier, pos uint64, ex *ReplicaExplanation) []int32 {
	r := st.ringFor(t)
	st.stamp++
	sample := st.sample[:0]
	examined := 0
	points := r.points
	for i, k := r.start(pos), 0; k < len(points); i, k = i+1, k+1 {
		if i == len(points) {
			i = 0
		}
		n := points[i].node
		if st.visited[n] == st.stamp || t.filter && !t.members.has(n) {
			continue
		}
		st.visited[n] = st.stamp
		if why := st.check(w, n, placing); why != fits {
			ex.reject(st.nodes[n].name, why.String())
		} else if sample = append(sample, n); len(sample) == sampleSize {
			break
		}
		if examined++; examined == walkLimit {
			break
		}
	}
	st.sample = sample
	return sample
}

// scan examines every node, for when the walks found nothing: either a feasible node the
// walks did not reach, preferring the best tier and then the highest rendezvous hash of
// slot and node, or every node's refusal, kept in st.refusals for the reason's details.
func (st *state) scan(w *workload, pos uint64, ex *ReplicaExplanation) (int32, string) {
	ex.resetRejections()
	if st.refusals == nil {
		st.refusals = make([]reason, len(st.nodes))
	}
	var counts [numReasons]int
	var feasible []int32
	bestTier := len(w.static.tiers)
	for i := range st.nodes {
		n := int32(i)
		why := st.staticReason(w, n)
		if why == fits {
			why = st.check(w, n, placing)
		}
		st.refusals[n] = why
		if why != fits {
			counts[why]++
			ex.reject(st.nodes[n].name, why.String())
			continue
		}
		switch t := w.static.tierOf(n); {
		case t < bestTier:
			bestTier, feasible = t, append(feasible[:0], n)
		case t == bestTier:
			feasible = append(feasible, n)
		}
	}
	if len(feasible) == 0 {
		return -1, unavailable(&counts, st.refusalDetails(w, &counts), len(st.nodes))
	}
	rank := func(n int32) uint64 { return mix64(pos ^ st.nodes[n].hash) }
	slices.SortFunc(feasible, func(a, b int32) int { return cmp.Or(cmp.Compare(rank(b), rank(a)), cmp.Compare(a, b)) })
	return st.choose(w, feasible[:min(len(feasible), sampleSize)], w.static.tiers[bestTier].score, ex), ""
}

func (st *state) assign(w *workload, slot int, n int32, kept bool) {
	w.slots[slot].node, w.slots[slot].kept = n, kept
	w.slots[slot].setUnplaced("")
	st.reserve(w, n, 1)
}

func (st *state) unassign(w *workload, slot int) {
	st.reserve(w, w.slots[slot].node, -1)
	w.slots[slot].node, w.slots[slot].kept = -1, false
}

// overflowReason says why the replicas of w that have no slot cannot run: once everything
// is placed, every alive node is full or refuses w for another reason.
func (st *state) overflowReason(w *workload) string {
	if n, why := st.scan(w, slotPosition(w.slotBase, len(w.slots)), nil); n < 0 {
		return why
	}
	// Unreachable while slots cover the alive nodes' capacity; said plainly all the same.
	return "beyond the " + strconv.Itoa(st.capacity) + " instances the alive nodes can run together"
}

// instanceID is w's ID for slot. A running copy's ID spells it already, mostly: the
// string is shared instead of built again for every replica of the cluster.
func (w *workload) instanceID(slot int, s *slotState) string {
	digits := 1
	for n := slot; n >= 10; n /= 10 {
		digits++
	}
	// Every copy's ID is w.prefix and a spelling of slot that slotOf accepts; the others
	// than the plain one ("+7", "+07") are longer. The length tells them apart without
	// reading the ID.
	for _, c := range s.copies {
		if len(c.ID) == len(w.prefix)+digits {
			return c.ID
		}
	}
	return w.prefix + strconv.Itoa(slot)
}

// placement assembles the result, every list sorted. Assignments holds every node's
// when only is -1, else only those of node index only.
func (st *state) placement(only int32) Placement {
	replicas := 0
	if only == -1 {
		for _, w := range st.workloads {
			replicas += len(w.slots)
		}
	}
	p := Placement{Revision: st.revision, Assignments: make([]Assignment, 0, replicas), Unplaced: []Unplaced{}, Rollouts: []Rollout{}}
	for _, w := range st.workloads {
		for slot := range w.slots {
			s := &w.slots[slot]
			switch {
			case s.node < 0:
				p.Unplaced = append(p.Unplaced, Unplaced{
					Namespace: w.ns, Workload: w.name, Slot: slot, InstanceID: w.instanceID(slot, s), Reason: s.unplaced(),
				})
			case only == -1 || s.node == only:
				p.Assignments = append(p.Assignments, Assignment{
					InstanceID: w.instanceID(slot, s), Namespace: w.ns, Workload: w.name, Slot: slot,
					Node: st.nodes[s.node].name, SpecHash: w.hash,
				})
			}
			st.stopLeftovers(s)
		}
		if first := len(w.slots); first < w.replicas {
			p.Unplaced = append(p.Unplaced, Unplaced{
				Namespace: w.ns, Workload: w.name, Slot: first, InstanceID: w.prefix + strconv.Itoa(first),
				Reason: st.overflowReason(w), More: w.replicas - first - 1,
			})
		}
		if r, ok := rolloutOf(w); ok {
			p.Rollouts = append(p.Rollouts, r)
		}
	}
	slices.SortFunc(st.stops, func(a, b Stop) int {
		return cmp.Or(strings.Compare(a.Instance.Node, b.Instance.Node), compareInstances(a.Instance, b.Instance))
	})
	p.Stop = append([]Stop{}, st.stops...)
	return p
}
