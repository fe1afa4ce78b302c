package planner

import (
	"cmp"
	"maps"
	"slices"
)

// LostPlacement is a Deployment that has fewer replicas placed with a new revision than
// with the base one on the same cluster, though it still wants them: another workload
// took the port, cpu, memory or room it ran in, or its own change no longer fits.
type LostPlacement struct {
	Namespace string
	Workload  string
	// Before and After count its placed replicas with each revision.
	Before, After int
	// Lost is how many replicas the new revision leaves unplaced that the base placed:
	// Before, or the new replica count when that is lower, less After.
	Lost int
	// Reason is why its first unplaced replica has no node with the new revision.
	Reason string
}

// LostPlacements compares the placements of two revisions on one cluster and returns,
// in namespace and name order, each Deployment of both that loses placed replicas.
// Deployments the new revision removes or scales down lose nothing they still want.
func LostPlacements(before, after Placement) []LostPlacement {
	type key struct{ namespace, workload string }
	type tally struct {
		placed, unplaced int
		reason           string
	}
	count := func(p Placement) map[key]*tally {
		m := map[key]*tally{}
		get := func(k key) *tally {
			if m[k] == nil {
				m[k] = &tally{}
			}
			return m[k]
		}
		for _, a := range p.Assignments {
			get(key{a.Namespace, a.Workload}).placed++
		}
		for _, u := range p.Unplaced {
			t := get(key{u.Namespace, u.Workload})
			if t.unplaced == 0 {
				t.reason = u.Reason
			}
			t.unplaced += u.Replicas()
		}
		return m
	}
	was, is := count(before), count(after)
	keys := slices.SortedFunc(maps.Keys(is), func(a, b key) int {
		return cmp.Or(cmp.Compare(a.namespace, b.namespace), cmp.Compare(a.workload, b.workload))
	})
	var out []LostPlacement
	for _, k := range keys {
		b, a := was[k], is[k]
		if b == nil {
			continue
		}
		if lost := min(b.placed, a.placed+a.unplaced) - a.placed; lost > 0 {
			out = append(out, LostPlacement{Namespace: k.namespace, Workload: k.workload,
				Before: b.placed, After: a.placed, Lost: lost, Reason: a.reason})
		}
	}
	return out
}
