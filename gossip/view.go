package gossip

import (
	"cmp"
	"slices"
)

// View is an immutable snapshot of the cluster as this node sees it. Callers
// must not modify it: the slices and maps are shared with other callers and
// with later views.
type View struct {
	// Nodes lists every known member, sorted by name, including failed or
	// departed ones for Config.DeadRetention (Alive=false).
	Nodes []NodeInfo
	// Owners lists the instances of alive members, one entry per member that
	// runs any, sorted by node name.
	Owners []OwnerInstances
	// Decisions lists the winning decision of every key, sorted by Key (see
	// Decision for which wins). It is the same slice in every view until the
	// set of decisions changes.
	Decisions []Decision
}

// OwnerInstances is what one node runs.
//
// A view shares the Instances slice of every owner that did not change with
// the view before it, and an owner's slice is never modified. So an owner
// whose Instances is the same slice (same first element, same length) in two
// views runs the same instances in both: a consumer that compares views
// skips it without reading it, and a change costs what it changes rather
// than a pass over every instance of the cluster.
type OwnerInstances struct {
	Node string
	// Instances are sorted by namespace, workload and ID.
	Instances []InstanceInfo
}

// Same reports whether a and b are the same immutable list, hence equal: the
// same slice handed out by two views. Lists that are not the same may still
// be equal.
func Same(a, b []InstanceInfo) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// NewView builds a view from a list of nodes and one of instances in any
// order, grouping the instances by Node. It does not keep either list. It is
// for views that do not come from a Cluster, such as a test's.
func NewView(nodes []NodeInfo, instances []InstanceInfo) View {
	v := View{Nodes: slices.Clone(nodes)}
	slices.SortFunc(v.Nodes, func(a, b NodeInfo) int { return cmp.Compare(a.Name, b.Name) })
	sorted := slices.Clone(instances)
	slices.SortFunc(sorted, func(a, b InstanceInfo) int { return cmp.Or(cmp.Compare(a.Node, b.Node), compareInstances(a, b)) })
	for start := 0; start < len(sorted); {
		end := start + 1
		for end < len(sorted) && sorted[end].Node == sorted[start].Node {
			end++
		}
		v.Owners = append(v.Owners, OwnerInstances{Node: sorted[start].Node, Instances: slices.Clip(sorted[start:end])})
		start = end
	}
	return v
}

// Instances returns the instances of every owner in one new list, sorted by
// namespace, workload, ID and node. It costs a sort of every instance: a
// consumer that follows changes compares Owners instead.
func (v View) Instances() []InstanceInfo {
	var out []InstanceInfo
	for _, o := range v.Owners {
		out = append(out, o.Instances...)
	}
	slices.SortFunc(out, func(a, b InstanceInfo) int { return cmp.Or(compareInstances(a, b), cmp.Compare(a.Node, b.Node)) })
	return out
}

// compareInstances orders instances by namespace, workload and ID.
func compareInstances(a, b InstanceInfo) int {
	return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Workload, b.Workload), cmp.Compare(a.ID, b.ID))
}
