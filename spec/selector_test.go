package spec

import "testing"

func req(key, op string, values ...string) LabelSelectorRequirement {
	return LabelSelectorRequirement{Key: key, Operator: op, Values: values}
}

func TestRequirementMatches(t *testing.T) {
	labels := map[string]string{"zone": "a", "gen": "3", "bad": "x"}
	tests := []struct {
		name    string
		r       LabelSelectorRequirement
		numeric bool
		want    bool
	}{
		{"In hit", req("zone", OpIn, "a", "b"), false, true},
		{"In miss", req("zone", OpIn, "b"), false, false},
		{"In missing label", req("rack", OpIn, "a"), false, false},
		{"NotIn hit", req("zone", OpNotIn, "a"), false, false},
		{"NotIn miss", req("zone", OpNotIn, "b"), false, true},
		{"NotIn missing label matches", req("rack", OpNotIn, "a"), false, true},
		{"Exists", req("zone", OpExists), false, true},
		{"Exists missing", req("rack", OpExists), false, false},
		{"DoesNotExist", req("rack", OpDoesNotExist), false, true},
		{"DoesNotExist present", req("zone", OpDoesNotExist), false, false},
		{"Gt true", req("gen", OpGt, "2"), true, true},
		{"Gt equal is false", req("gen", OpGt, "3"), true, false},
		{"Lt true", req("gen", OpLt, "4"), true, true},
		{"Lt false", req("gen", OpLt, "3"), true, false},
		{"Gt on a non-number", req("bad", OpGt, "1"), true, false},
		{"Gt with a non-number value", req("gen", OpGt, "x"), true, false},
		{"Gt missing label", req("rack", OpGt, "1"), true, false},
		{"Gt two values", req("gen", OpGt, "1", "2"), true, false},
		{"Gt on instance labels", req("gen", OpGt, "1"), false, false},
		{"unknown operator", req("zone", "Like", "a"), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.matches(labels, tt.numeric); got != tt.want {
				t.Errorf("matches = %v, want %v", got, tt.want)
			}
		})
	}
}

// matchCase is one row of a selector's table test.
type matchCase[S interface{ Matches(map[string]string) bool }] struct {
	name string
	sel  S
	want bool
}

func checkMatches[S interface{ Matches(map[string]string) bool }](t *testing.T, labels map[string]string, tests []matchCase[S]) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.sel.Matches(labels); got != tt.want {
				t.Errorf("Matches = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestLabelSelectorMatches(t *testing.T) {
	labels := map[string]string{"app": "web", "tier": "front"}
	tests := []matchCase[*LabelSelector]{
		{"nil matches nothing", nil, false},
		{"empty matches everything", &LabelSelector{}, true},
		{"matchLabels", &LabelSelector{MatchLabels: map[string]string{"app": "web"}}, true},
		{"matchLabels wrong value", &LabelSelector{MatchLabels: map[string]string{"app": "db"}}, false},
		{"matchLabels missing key", &LabelSelector{MatchLabels: map[string]string{"role": "x"}}, false},
		{"In", &LabelSelector{MatchExpressions: []LabelSelectorRequirement{req("tier", OpIn, "front", "back")}}, true},
		{"NotIn on a missing label", &LabelSelector{MatchExpressions: []LabelSelectorRequirement{req("zone", OpNotIn, "a")}}, true},
		{"DoesNotExist on a present label", &LabelSelector{MatchExpressions: []LabelSelectorRequirement{req("app", OpDoesNotExist)}}, false},
		{"unknown operator", &LabelSelector{MatchExpressions: []LabelSelectorRequirement{req("app", "Bogus")}}, false},
		{"Gt is for node selectors only", &LabelSelector{MatchExpressions: []LabelSelectorRequirement{req("app", OpGt, "1")}}, false},
		{"expressions all hold", &LabelSelector{MatchExpressions: []LabelSelectorRequirement{req("app", OpIn, "web"), req("tier", OpExists)}}, true},
		{"one expression fails", &LabelSelector{MatchLabels: map[string]string{"app": "web"}, MatchExpressions: []LabelSelectorRequirement{req("tier", OpNotIn, "front")}}, false},
	}
	checkMatches(t, labels, tests)
}

func TestNodeSelectorMatches(t *testing.T) {
	labels := map[string]string{"zone": "a", "disk": "ssd"}
	term := func(rs ...LabelSelectorRequirement) NodeSelectorTerm {
		return NodeSelectorTerm{MatchExpressions: rs}
	}
	tests := []matchCase[*NodeSelector]{
		{"none allows all", nil, true},
		{"no terms matches nothing", &NodeSelector{}, false},
		{"empty term matches nothing", &NodeSelector{NodeSelectorTerms: []NodeSelectorTerm{{}}}, false},
		{"one term holds", &NodeSelector{NodeSelectorTerms: []NodeSelectorTerm{term(req("zone", OpIn, "a"))}}, true},
		{"terms are ORed", &NodeSelector{NodeSelectorTerms: []NodeSelectorTerm{term(req("zone", OpIn, "b")), term(req("disk", OpExists))}}, true},
		{"expressions are ANDed", &NodeSelector{NodeSelectorTerms: []NodeSelectorTerm{term(req("zone", OpIn, "a"), req("disk", OpIn, "hdd"))}}, false},
	}
	checkMatches(t, labels, tests)
}

func TestMatchesLabels(t *testing.T) {
	labels := map[string]string{"zone": "a", "disk": "ssd"}
	if !MatchesLabels(nil, labels) || !MatchesLabels(map[string]string{"zone": "a"}, labels) || MatchesLabels(map[string]string{"zone": "b"}, labels) || MatchesLabels(map[string]string{"rack": "1"}, labels) {
		t.Error("MatchesLabels disagrees with nodeSelector semantics")
	}
}
