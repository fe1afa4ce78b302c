package planner

import (
	"slices"
	"strconv"

	"github.com/shoalhq/shoal/spec"
)

// Label matching follows Kubernetes exactly, because users bring their manifests from there:
// a nil LabelSelector matches nothing and an empty one everything; an empty
// NodeSelectorTerm matches nothing; NotIn and DoesNotExist match a missing label; Gt and Lt
// compare integers and apply to node labels only.

// matchRequirement reports whether labels satisfy one requirement.
func matchRequirement(r spec.LabelSelectorRequirement, labels map[string]string, numeric bool) bool {
	v, ok := labels[r.Key]
	switch r.Operator {
	case spec.OpIn:
		return ok && slices.Contains(r.Values, v)
	case spec.OpNotIn:
		return !ok || !slices.Contains(r.Values, v)
	case spec.OpExists:
		return ok
	case spec.OpDoesNotExist:
		return !ok
	case spec.OpGt, spec.OpLt:
		if !numeric || !ok || len(r.Values) != 1 {
			return false
		}
		have, err1 := strconv.ParseInt(v, 10, 64)
		want, err2 := strconv.ParseInt(r.Values[0], 10, 64)
		if err1 != nil || err2 != nil {
			return false
		}
		if r.Operator == spec.OpGt {
			return have > want
		}
		return have < want
	}
	return false
}

// matchLabelSelector reports whether an instance's labels satisfy a selector.
func matchLabelSelector(s *spec.LabelSelector, labels map[string]string) bool {
	if s == nil {
		return false
	}
	for k, v := range s.MatchLabels {
		if have, ok := labels[k]; !ok || have != v {
			return false
		}
	}
	for _, r := range s.MatchExpressions {
		if !matchRequirement(r, labels, false) {
			return false
		}
	}
	return true
}

// matchNodeSelectorTerm reports whether node labels satisfy every expression of a term.
func matchNodeSelectorTerm(t spec.NodeSelectorTerm, labels map[string]string) bool {
	if len(t.MatchExpressions) == 0 {
		return false
	}
	for _, r := range t.MatchExpressions {
		if !matchRequirement(r, labels, true) {
			return false
		}
	}
	return true
}

// matchNodeSelector reports whether node labels satisfy any term; no selector allows every node.
func matchNodeSelector(s *spec.NodeSelector, labels map[string]string) bool {
	if s == nil {
		return true
	}
	for _, t := range s.NodeSelectorTerms {
		if matchNodeSelectorTerm(t, labels) {
			return true
		}
	}
	return false
}

// matchLabels reports whether labels hold every pair of a nodeSelector.
func matchLabels(want, labels map[string]string) bool {
	for k, v := range want {
		if have, ok := labels[k]; !ok || have != v {
			return false
		}
	}
	return true
}

// preferredScore is the sum of the weights of the preferred node-affinity terms a node matches.
func preferredScore(terms []spec.PreferredSchedulingTerm, labels map[string]string) int64 {
	var score int64
	for _, t := range terms {
		if matchNodeSelectorTerm(t.Preference, labels) {
			score += int64(t.Weight)
		}
	}
	return score
}
