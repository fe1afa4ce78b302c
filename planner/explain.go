package planner

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/shoalhq/shoal/spec"
)

// ErrUnknownWorkload is returned by Explain for a Deployment the desired state does not hold.
var ErrUnknownWorkload = errors.New("planner: no such Deployment in the desired state")

// Explanation says, for `shoal explain`, where each replica of one Deployment went and why.
type Explanation struct {
	Namespace string `json:"namespace"`
	Workload  string `json:"workload"`
	SpecHash  string `json:"specHash"`
	// Replicas has one entry per slot, in slot order, for the slots that could be placed:
	// those beyond what the alive nodes can run together are in Beyond.
	Replicas []ReplicaExplanation `json:"replicas"`
	// Beyond is the replicas no node can take however the others are placed, as one
	// entry; nil when there are none.
	Beyond *Unplaced `json:"beyond,omitempty"`
}

// ReplicaExplanation is the story of one replica slot.
type ReplicaExplanation struct {
	Slot       int    `json:"slot"`
	InstanceID string `json:"instanceID"`
	// Node is where the replica goes; empty when unplaced.
	Node string `json:"node,omitempty"`
	// Kept is true when the replica stays where it already runs.
	Kept bool `json:"kept,omitempty"`
	// Summary is one line: where and why, or why not.
	Summary string `json:"summary"`
	// Candidates are the feasible nodes that were scored, in the order they were sampled.
	Candidates []Candidate `json:"candidates,omitempty"`
	// Rejected are the nodes a filter refused, each with the first filter that did. For an
	// unplaced replica that is every node; otherwise the nodes the search passed over.
	Rejected []Rejection `json:"rejected,omitempty"`
}

// Candidate is a feasible node and its score.
type Candidate struct {
	Node string `json:"node"`
	// Preference is the summed weight of the preferred node-affinity terms the node matches;
	// only nodes of the highest preference that has a feasible node are scored.
	Preference int64   `json:"preference"`
	Scores     []Score `json:"scores"`
	// Total is the sum of each score's points times its weight; the highest wins, and a tie
	// goes to the candidate sampled first.
	Total int64 `json:"total"`
}

// Score is one ranker's opinion of a candidate.
type Score struct {
	Ranker string `json:"ranker"`
	// Points run from 0 to 100.
	Points int64 `json:"points"`
	Weight int64 `json:"weight"`
}

// Rejection is a node refused for a replica, or a running copy refused its place.
type Rejection struct {
	Node   string `json:"node"`
	Reason string `json:"reason"`
}

// Explain runs Plan and reports, for each replica of one Deployment, where it went and the
// score of each candidate, or why no node could take it.
func (p *Planner) Explain(desired spec.Desired, view View, namespace, workload string) (Explanation, error) {
	st := newState(p, desired, IndexNodes(view.Nodes), view.Instances)
	w := st.byKey[namespace+"/"+workload]
	if w == nil {
		return Explanation{}, fmt.Errorf("explain %s/%s: %w", namespace, workload, ErrUnknownWorkload)
	}
	st.trace = &trace{w: w, replicas: make([]ReplicaExplanation, len(w.slots))}
	st.run()
	e := Explanation{Namespace: w.ns, Workload: w.name, SpecHash: w.hash, Replicas: st.trace.replicas}
	if first := len(w.slots); first < w.replicas {
		e.Beyond = &Unplaced{Namespace: w.ns, Workload: w.name, Slot: first, InstanceID: w.prefix + strconv.Itoa(first),
			Reason: st.overflowReason(w), More: w.replicas - first - 1}
	}
	for slot := range e.Replicas {
		r, s := &e.Replicas[slot], &w.slots[slot]
		r.Slot, r.InstanceID, r.Kept = slot, w.prefix+strconv.Itoa(slot), s.kept
		var refusals []Rejection
		for i, why := range s.refused() {
			refusals = append(refusals, Rejection{Node: s.copies[i].Node, Reason: "running copy cannot stay: " + why})
		}
		r.Rejected = append(refusals, r.Rejected...)
		switch {
		case s.kept:
			r.Node = st.nodes[s.node].name
			r.Summary = "kept on " + r.Node + ", where it runs and every hard constraint still holds"
		case s.node >= 0:
			r.Node = st.nodes[s.node].name
			r.Summary = "placed on " + r.Node + ", the best of " + strconv.Itoa(len(r.Candidates)) + " feasible candidate(s) sampled"
		default:
			r.Summary = s.unplaced()
		}
	}
	return e, nil
}

// trace collects the explanation of one workload's replicas while Plan runs.
type trace struct {
	w        *workload
	replicas []ReplicaExplanation
}

// replica returns the cleared explanation of a slot when w is the one traced, else nil.
func (t *trace) replica(w *workload, slot int) *ReplicaExplanation {
	if t == nil || t.w != w {
		return nil
	}
	t.replicas[slot] = ReplicaExplanation{}
	return &t.replicas[slot]
}

func (r *ReplicaExplanation) reject(node, why string) {
	if r != nil {
		r.Rejected = append(r.Rejected, Rejection{Node: node, Reason: why})
	}
}

func (r *ReplicaExplanation) resetRejections() {
	if r != nil {
		r.Rejected = r.Rejected[:0]
	}
}

func (r *ReplicaExplanation) copyRejections(from *ReplicaExplanation) {
	if r != nil && from != nil {
		r.Rejected = append(r.Rejected[:0], from.Rejected...)
	}
}
