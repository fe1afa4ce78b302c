package planner

import (
	"testing"

	"github.com/shoalhq/shoal/spec"
)

// req is one label requirement, for the affinity options of the planner's tests.
func req(key, op string, values ...string) spec.LabelSelectorRequirement {
	return spec.LabelSelectorRequirement{Key: key, Operator: op, Values: values}
}

func TestPreferredScore(t *testing.T) {
	labels := map[string]string{"zone": "a", "disk": "ssd"}
	terms := []spec.PreferredSchedulingTerm{
		{Weight: 10, Preference: spec.NodeSelectorTerm{MatchExpressions: []spec.LabelSelectorRequirement{req("zone", spec.OpIn, "a")}}},
		{Weight: 5, Preference: spec.NodeSelectorTerm{MatchExpressions: []spec.LabelSelectorRequirement{req("disk", spec.OpIn, "hdd")}}},
		{Weight: 1, Preference: spec.NodeSelectorTerm{MatchExpressions: []spec.LabelSelectorRequirement{req("disk", spec.OpExists)}}},
	}
	if got := preferredScore(terms, labels); got != 11 {
		t.Errorf("preferredScore = %d, want 11", got)
	}
}
