package spec

import (
	"slices"
	"strconv"
)

// Label matching follows Kubernetes exactly, because users bring their manifests from there:
// a nil LabelSelector matches nothing and an empty one everything; a nil NodeSelector allows
// every node; an empty NodeSelectorTerm matches nothing; NotIn and DoesNotExist match a
// missing label; Gt and Lt compare integers and apply to node labels only.

// Matches reports whether labels satisfy every term of the selector.
func (s *LabelSelector) Matches(labels map[string]string) bool {
	if s == nil || !MatchesLabels(s.MatchLabels, labels) {
		return false
	}
	for _, r := range s.MatchExpressions {
		if !r.matches(labels, false) {
			return false
		}
	}
	return true
}

// Matches reports whether node labels satisfy any term; a nil selector allows every node.
func (s *NodeSelector) Matches(labels map[string]string) bool {
	if s == nil {
		return true
	}
	for _, t := range s.NodeSelectorTerms {
		if t.Matches(labels) {
			return true
		}
	}
	return false
}

// Matches reports whether node labels satisfy every expression of the term.
func (t NodeSelectorTerm) Matches(labels map[string]string) bool {
	if len(t.MatchExpressions) == 0 {
		return false
	}
	for _, r := range t.MatchExpressions {
		if !r.matches(labels, true) {
			return false
		}
	}
	return true
}

// MatchesLabels reports whether labels hold every pair of want, as a pod's nodeSelector
// and a selector's matchLabels ask.
func MatchesLabels(want, labels map[string]string) bool {
	for k, v := range want {
		if have, ok := labels[k]; !ok || have != v {
			return false
		}
	}
	return true
}

// matches reports whether labels satisfy one requirement; numeric allows Gt and Lt.
func (r LabelSelectorRequirement) matches(labels map[string]string, numeric bool) bool {
	v, ok := labels[r.Key]
	switch r.Operator {
	case OpIn:
		return ok && slices.Contains(r.Values, v)
	case OpNotIn:
		return !ok || !slices.Contains(r.Values, v)
	case OpExists:
		return ok
	case OpDoesNotExist:
		return !ok
	case OpGt, OpLt:
		if !numeric || !ok || len(r.Values) != 1 {
			return false
		}
		have, err1 := strconv.ParseInt(v, 10, 64)
		want, err2 := strconv.ParseInt(r.Values[0], 10, 64)
		if err1 != nil || err2 != nil {
			return false
		}
		if r.Operator == OpGt {
			return have > want
		}
		return have < want
	}
	return false
}
