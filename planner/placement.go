package planner

// Placement is the outcome of one Plan: identical on every daemon given the same inputs.
// Every slice is sorted, so a Placement marshals to the same bytes everywhere.
type Placement struct {
	// Revision is the commit the desired state was read from.
	Revision string `json:"revision"`
	// Assignments is every replica that has a node, by namespace, workload and slot.
	Assignments []Assignment `json:"assignments"`
	// Unplaced is every replica that has none, with the reason; nothing is dropped silently.
	Unplaced []Unplaced `json:"unplaced"`
	// Stop is every instance in the view that must go now: duplicates, replicas beyond the
	// count, instances of removed Deployments, and copies left behind when a replica moved.
	Stop []Stop `json:"stop"`
	// Rollouts lists the Deployments that still run instances of an older spec, with the
	// numbers the agent paces their replacement by. Outdated instances are not in Stop.
	Rollouts []Rollout `json:"rollouts"`
}

// Assignment puts one replica slot on a node.
type Assignment struct {
	InstanceID string `json:"instanceID"`
	Namespace  string `json:"namespace"`
	Workload   string `json:"workload"`
	Slot       int    `json:"slot"`
	Node       string `json:"node"`
	SpecHash   string `json:"specHash"`
}

// Unplaced is a replica slot no node can take.
type Unplaced struct {
	Namespace  string `json:"namespace"`
	Workload   string `json:"workload"`
	Slot       int    `json:"slot"`
	InstanceID string `json:"instanceID"`
	// Reason counts the nodes by why they refused, as kube-scheduler does:
	// "0/5 nodes are available: 3 insufficient memory, 2 node(s) didn't match pod anti-affinity rules."
	Reason string `json:"reason"`
	// More is how many further slots, Slot+1 to Slot+More, are unplaced for the same
	// reason. The replicas of a Deployment beyond what all the alive nodes together can
	// run are reported as one such entry, so that a plan costs memory by what can be
	// placed, not by the replicas asked for.
	More int `json:"more,omitempty"`
}

// Replicas is how many replicas u stands for.
func (u Unplaced) Replicas() int { return 1 + u.More }

// Stop is a running instance the plan does not keep.
type Stop struct {
	Instance Instance `json:"instance"`
	Reason   string   `json:"reason"`
}

// Rollout is what the agent needs to replace a Deployment's outdated instances at the pace
// its strategy allows. The planner only reports; the agent decides when each one stops.
type Rollout struct {
	Namespace string `json:"namespace"`
	Workload  string `json:"workload"`
	// SpecHash is the current spec; every instance of Outdated runs another one.
	SpecHash string `json:"specHash"`
	// Replicas is the desired count.
	Replicas int `json:"replicas"`
	// Strategy is RollingUpdate or Recreate.
	Strategy string `json:"strategy"`
	// MaxSurge is how many instances may run above Replicas during the update.
	MaxSurge int `json:"maxSurge"`
	// MaxUnavailable is how many of Replicas may be unready during the update.
	MaxUnavailable int `json:"maxUnavailable"`
	// Outdated is one instance per outdated ID (duplicates are in Stop), by ID.
	Outdated []Instance `json:"outdated"`
}

// ForNode returns the assignments of one node, in Placement order.
func (p Placement) ForNode(node string) []Assignment {
	var out []Assignment
	for _, a := range p.Assignments {
		if a.Node == node {
			out = append(out, a)
		}
	}
	return out
}

// StopsOn returns the instances one node must stop, in Placement order.
func (p Placement) StopsOn(node string) []Stop {
	var out []Stop
	for _, s := range p.Stop {
		if s.Instance.Node == node {
			out = append(out, s)
		}
	}
	return out
}
