package planner

import "github.com/shoalhq/shoal/spec"

// Label matching itself lives in spec (LabelSelector.Matches, NodeSelector.Matches,
// spec.MatchesLabels), shared with validation and DNS; the planner only weighs it.

// preferredScore is the sum of the weights of the preferred node-affinity terms a node matches.
func preferredScore(terms []spec.PreferredSchedulingTerm, labels map[string]string) int64 {
	var score int64
	for _, t := range terms {
		if t.Preference.Matches(labels) {
			score += int64(t.Weight)
		}
	}
	return score
}
