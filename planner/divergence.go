package planner

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// Divergence (rule 6 of docs/design.md): while views differ, a replica may start on two nodes, or
// a node may run replicas beyond the count. Once views agree every daemon computes the same
// plan, which keeps exactly one copy of each wanted ID and lists every other one to stop.
// Which copy stays is a fixed rule — running and fitting, then ready, then the lowest node
// name — never a race.

// compareInstances is a total order on instances, for sorting the view. Reports of one
// instance (one ID on one node) come together, the most hopeful first.
func compareInstances(a, b Instance) int {
	// Early returns, not cmp.Or, which would compare every field every time: the planner
	// compares a view of every instance in the cluster.
	if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
		return c
	}
	if c := strings.Compare(a.Workload, b.Workload); c != 0 {
		return c
	}
	if c := strings.Compare(a.ID, b.ID); c != 0 {
		return c
	}
	if c := strings.Compare(a.Node, b.Node); c != 0 {
		return c
	}
	return cmp.Or(-compareBool(a.Ready, b.Ready), -compareBool(a.Running, b.Running), strings.Compare(a.SpecHash, b.SpecHash))
}

// sameInstance reports whether two reports are of one instance: a node runs one per ID.
func sameInstance(a, b Instance) bool {
	return a.Namespace == b.Namespace && a.Workload == b.Workload && a.ID == b.ID && a.Node == b.Node
}

// compareCopies orders copies of one ID best first: ready, running, lowest node name.
func compareCopies(a, b Instance) int {
	return cmp.Or(-compareBool(a.Ready, b.Ready), -compareBool(a.Running, b.Running), compareInstances(a, b))
}

// classify sorts what the view reports running into copies of wanted slots, outdated
// instances and instances to stop.
func (st *state) classify(view []Instance) {
	instances := view
	if !sortedDistinct(view) {
		instances = slices.Clone(view)
		slices.SortFunc(instances, compareInstances)
		instances = slices.CompactFunc(instances, sameInstance)
	}
	var w *workload
	for i, in := range instances {
		// The view is sorted by namespace and workload: one lookup per workload.
		if i == 0 || in.Namespace != instances[i-1].Namespace || in.Workload != instances[i-1].Workload {
			w = st.byKey[in.Namespace+"/"+in.Workload]
		}
		switch {
		case w == nil:
			st.stop(in, "its Deployment is not in the desired state")
		case in.SpecHash != w.hash && w.replicas == 0:
			st.stop(in, "scaled to zero")
		case in.SpecHash != w.hash:
			w.outdated = append(w.outdated, in)
		default:
			slot := slotOf(in.ID, w.prefix)
			switch {
			case slot < 0:
				st.stop(in, "its ID names no replica of the current spec")
			case slot >= w.replicas:
				st.stop(in, "scaled down to "+strconv.Itoa(w.replicas)+" replicas")
			default:
				w.growSlots(slot + 1)
				// Most slots have one copy: it stays where it is in instances, which is
				// never written (it may be the caller's view). A second copy moves the
				// slot's copies to a slice of their own, as the capacity of one forces.
				s := &w.slots[slot]
				if s.copies == nil {
					s.copies = instances[i : i+1 : i+1]
				} else {
					s.copies = append(s.copies, in)
				}
			}
		}
	}
	for _, w := range st.workloads {
		w.outdated = st.dedupeOutdated(w.outdated)
		for i := range w.slots {
			if len(w.slots[i].copies) > 1 {
				slices.SortFunc(w.slots[i].copies, compareCopies)
			}
		}
	}
}

// sortedDistinct reports whether view is already in compareInstances order with one report
// per instance, as the agent hands it over: then classify need not sort a copy.
func sortedDistinct(view []Instance) bool {
	for i := 1; i < len(view); i++ {
		if compareInstances(view[i-1], view[i]) > 0 || sameInstance(view[i-1], view[i]) {
			return false
		}
	}
	return true
}

// dedupeOutdated keeps the best copy of each outdated ID for the rollout and stops the rest.
func (st *state) dedupeOutdated(outdated []Instance) []Instance {
	slices.SortFunc(outdated, func(a, b Instance) int { return cmp.Or(strings.Compare(a.ID, b.ID), compareCopies(a, b)) })
	var kept []Instance
	for _, in := range outdated {
		if n := len(kept); n > 0 && kept[n-1].ID == in.ID {
			st.stop(in, "duplicate of outdated instance "+in.ID+" kept on "+kept[n-1].Node)
			continue
		}
		kept = append(kept, in)
	}
	return kept
}

func (st *state) stop(in Instance, why string) {
	st.stops = append(st.stops, Stop{Instance: in, Reason: why})
}

// keepRunning keeps each slot on its best running copy that may stay, then drops kept
// instances whose required pod affinity the kept set does not satisfy, until none is left.
func (st *state) keepRunning() {
	for _, w := range st.workloads {
		for slot := range w.slots {
			s := &w.slots[slot]
			for _, c := range s.copies {
				n, why := st.keepRefusal(w, c)
				if why != "" {
					s.refuse(why)
					continue
				}
				st.assign(w, slot, n, true)
				break
			}
		}
	}
	for dropped := true; dropped; {
		dropped = false
		for _, w := range st.workloads {
			if !w.requiresAffinity {
				continue
			}
			for slot := range w.slots {
				s := &w.slots[slot]
				if s.kept && !st.affinityHolds(w, s.node, true) {
					st.unassign(w, slot)
					s.refuse(affinityMismatch.String())
					dropped = true
				}
			}
		}
	}
}

// keepRefusal returns the node of a running copy and why it cannot keep its place there,
// or "" when it can.
func (st *state) keepRefusal(w *workload, c Instance) (int32, string) {
	n, ok := st.byName[c.Node]
	switch {
	case !ok:
		return -1, "node not in view"
	case !c.Running:
		return n, "not running"
	}
	// The static set holds exactly the nodes the static filters pass: only the others need
	// them run to say why.
	if !w.static.all.has(n) {
		if why := st.staticReason(w, n); why != fits {
			return n, why.String()
		}
	}
	if why := st.check(w, n, keeping); why != fits {
		return n, why.String()
	}
	return n, ""
}

// stopLeftovers lists every copy of a slot that is not on the slot's node.
func (st *state) stopLeftovers(s *slotState) {
	refused := s.refused()
	for i, c := range s.copies {
		if s.node >= 0 && c.Node == st.nodes[s.node].name {
			continue
		}
		why := "a duplicate"
		if i < len(refused) {
			why = refused[i]
		}
		switch {
		case s.node < 0:
			st.stop(c, "cannot stay ("+why+") and no node can take it")
		case i < len(refused):
			st.stop(c, "moved to "+st.nodes[s.node].name+": "+why)
		default:
			st.stop(c, "duplicate: the copy on "+st.nodes[s.node].name+" is kept")
		}
	}
}
