package planner

import (
	"testing"

	"github.com/shoalhq/shoal/spec"
)

func req(key, op string, values ...string) spec.LabelSelectorRequirement {
	return spec.LabelSelectorRequirement{Key: key, Operator: op, Values: values}
}

func TestMatchRequirement(t *testing.T) {
	labels := map[string]string{"zone": "a", "gen": "3", "bad": "x"}
	tests := []struct {
		name    string
		r       spec.LabelSelectorRequirement
		numeric bool
		want    bool
	}{
		{"In hit", req("zone", spec.OpIn, "a", "b"), false, true},
		{"In miss", req("zone", spec.OpIn, "b"), false, false},
		{"In missing label", req("rack", spec.OpIn, "a"), false, false},
		{"NotIn hit", req("zone", spec.OpNotIn, "a"), false, false},
		{"NotIn miss", req("zone", spec.OpNotIn, "b"), false, true},
		{"NotIn missing label matches", req("rack", spec.OpNotIn, "a"), false, true},
		{"Exists", req("zone", spec.OpExists), false, true},
		{"Exists missing", req("rack", spec.OpExists), false, false},
		{"DoesNotExist", req("rack", spec.OpDoesNotExist), false, true},
		{"DoesNotExist present", req("zone", spec.OpDoesNotExist), false, false},
		{"Gt true", req("gen", spec.OpGt, "2"), true, true},
		{"Gt equal is false", req("gen", spec.OpGt, "3"), true, false},
		{"Lt true", req("gen", spec.OpLt, "4"), true, true},
		{"Lt false", req("gen", spec.OpLt, "3"), true, false},
		{"Gt on a non-number", req("bad", spec.OpGt, "1"), true, false},
		{"Gt with a non-number value", req("gen", spec.OpGt, "x"), true, false},
		{"Gt missing label", req("rack", spec.OpGt, "1"), true, false},
		{"Gt two values", req("gen", spec.OpGt, "1", "2"), true, false},
		{"Gt on instance labels", req("gen", spec.OpGt, "1"), false, false},
		{"unknown operator", req("zone", "Like", "a"), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := matchRequirement(tt.r, labels, tt.numeric); got != tt.want {
				t.Errorf("matchRequirement = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMatchLabelSelector(t *testing.T) {
	labels := map[string]string{"app": "web", "tier": "front"}
	tests := []struct {
		name string
		sel  *spec.LabelSelector
		want bool
	}{
		{"nil matches nothing", nil, false},
		{"empty matches everything", &spec.LabelSelector{}, true},
		{"matchLabels", &spec.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, true},
		{"matchLabels wrong value", &spec.LabelSelector{MatchLabels: map[string]string{"app": "db"}}, false},
		{"matchLabels missing key", &spec.LabelSelector{MatchLabels: map[string]string{"role": "x"}}, false},
		{"expressions all hold", &spec.LabelSelector{MatchExpressions: []spec.LabelSelectorRequirement{req("app", spec.OpIn, "web"), req("tier", spec.OpExists)}}, true},
		{"one expression fails", &spec.LabelSelector{MatchLabels: map[string]string{"app": "web"}, MatchExpressions: []spec.LabelSelectorRequirement{req("tier", spec.OpNotIn, "front")}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := matchLabelSelector(tt.sel, labels); got != tt.want {
				t.Errorf("matchLabelSelector = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMatchNodeSelector(t *testing.T) {
	labels := map[string]string{"zone": "a", "disk": "ssd"}
	term := func(rs ...spec.LabelSelectorRequirement) spec.NodeSelectorTerm {
		return spec.NodeSelectorTerm{MatchExpressions: rs}
	}
	tests := []struct {
		name string
		sel  *spec.NodeSelector
		want bool
	}{
		{"none allows all", nil, true},
		{"no terms matches nothing", &spec.NodeSelector{}, false},
		{"empty term matches nothing", &spec.NodeSelector{NodeSelectorTerms: []spec.NodeSelectorTerm{{}}}, false},
		{"one term holds", &spec.NodeSelector{NodeSelectorTerms: []spec.NodeSelectorTerm{term(req("zone", spec.OpIn, "a"))}}, true},
		{"terms are ORed", &spec.NodeSelector{NodeSelectorTerms: []spec.NodeSelectorTerm{term(req("zone", spec.OpIn, "b")), term(req("disk", spec.OpExists))}}, true},
		{"expressions are ANDed", &spec.NodeSelector{NodeSelectorTerms: []spec.NodeSelectorTerm{term(req("zone", spec.OpIn, "a"), req("disk", spec.OpIn, "hdd"))}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := matchNodeSelector(tt.sel, labels); got != tt.want {
				t.Errorf("matchNodeSelector = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMatchLabelsAndPreferredScore(t *testing.T) {
	labels := map[string]string{"zone": "a", "disk": "ssd"}
	if !matchLabels(nil, labels) || !matchLabels(map[string]string{"zone": "a"}, labels) || matchLabels(map[string]string{"zone": "b"}, labels) {
		t.Error("matchLabels disagrees with nodeSelector semantics")
	}
	terms := []spec.PreferredSchedulingTerm{
		{Weight: 10, Preference: spec.NodeSelectorTerm{MatchExpressions: []spec.LabelSelectorRequirement{req("zone", spec.OpIn, "a")}}},
		{Weight: 5, Preference: spec.NodeSelectorTerm{MatchExpressions: []spec.LabelSelectorRequirement{req("disk", spec.OpIn, "hdd")}}},
		{Weight: 1, Preference: spec.NodeSelectorTerm{MatchExpressions: []spec.LabelSelectorRequirement{req("disk", spec.OpExists)}}},
	}
	if got := preferredScore(terms, labels); got != 11 {
		t.Errorf("preferredScore = %d, want 11", got)
	}
}
