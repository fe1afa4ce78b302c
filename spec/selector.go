package spec

import "slices"

// Matches reports whether labels satisfy every term of the selector, with the
// semantics of Kubernetes label selectors: NotIn and DoesNotExist hold for an
// absent label. A nil selector matches nothing; an empty one matches everything.
func (s *LabelSelector) Matches(labels map[string]string) bool {
	if s == nil {
		return false
	}
	for k, v := range s.MatchLabels {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	for _, req := range s.MatchExpressions {
		got, ok := labels[req.Key]
		var holds bool
		switch req.Operator {
		case OpIn:
			holds = ok && slices.Contains(req.Values, got)
		case OpNotIn:
			holds = !ok || !slices.Contains(req.Values, got)
		case OpExists:
			holds = ok
		case OpDoesNotExist:
			holds = !ok
		}
		if !holds {
			return false
		}
	}
	return true
}
