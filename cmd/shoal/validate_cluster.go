package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/shoalhq/shoal/planner"
	"github.com/shoalhq/shoal/spec"
)

// clusterLabelFindings warns about each nodeSelector label, and each required node
// affinity expression of operator In or Exists, that no node of view carries: such a
// workload would never place on this cluster. Labels can be added to nodes later, so this
// is a warning, not an error. A node affinity term is only reported when every one of its
// terms is unsatisfiable, since any one of them may place the workload.
func clusterLabelFindings(set *spec.Set, view planner.View) spec.Diagnostics {
	var diags spec.Diagnostics
	names := make([]string, 0, len(view.Nodes))
	for _, n := range view.Nodes {
		names = append(names, n.Name)
	}
	slices.Sort(names)
	nodes := "(nodes: " + strings.Join(names, ", ") + ")"
	if len(names) == 0 {
		nodes = "(the cluster has no nodes)"
	}
	carried := func(key string, values []string) bool {
		return slices.ContainsFunc(view.Nodes, func(n planner.Node) bool {
			v, ok := n.Labels[key]
			return ok && (values == nil || slices.Contains(values, v))
		})
	}
	for _, d := range set.Deployments {
		warn := func(path, format string, args ...any) {
			diags = append(diags, spec.Diagnostic{Severity: spec.SeverityWarning, File: d.Source.File, Line: d.Source.Line,
				Path: "spec.template.spec." + path, Message: fmt.Sprintf(format, args...)})
		}
		pod := &d.Spec.Template.Spec
		for _, k := range slices.Sorted(maps.Keys(pod.NodeSelector)) {
			if v := pod.NodeSelector[k]; !carried(k, []string{v}) {
				warn("nodeSelector", "nodeSelector %s=%s: no node carries this label %s", k, v, nodes)
			}
		}
		if pod.Affinity == nil || pod.Affinity.NodeAffinity == nil || pod.Affinity.NodeAffinity.Required == nil {
			continue
		}
		terms := pod.Affinity.NodeAffinity.Required.NodeSelectorTerms
		var missing []string
		for _, t := range terms {
			before := len(missing)
			for _, e := range t.MatchExpressions {
				switch e.Operator {
				case spec.OpIn:
					if !carried(e.Key, e.Values) {
						missing = append(missing, fmt.Sprintf("%s in (%s)", e.Key, strings.Join(e.Values, ", ")))
					}
				case spec.OpExists:
					if !carried(e.Key, nil) {
						missing = append(missing, e.Key)
					}
				}
			}
			if len(missing) == before {
				missing = nil // this term may place the workload
				break
			}
		}
		for _, m := range missing {
			warn("affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution",
				"required node affinity %s: no node carries this label %s", m, nodes)
		}
	}
	return diags
}
