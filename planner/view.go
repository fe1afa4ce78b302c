package planner

// Well-known node labels. A node without a hostname label is treated as labelled with its name.
const (
	LabelHostname = "kubernetes.io/hostname"
	LabelZone     = "topology.kubernetes.io/zone"
)

// Resources is an amount of schedulable CPU and memory.
type Resources struct {
	// MilliCPU is in thousandths of a core.
	MilliCPU int64 `json:"milliCPU"`
	// MemoryBytes is in bytes.
	MemoryBytes int64 `json:"memoryBytes"`
}

// DefaultMaxInstances is a node's MaxInstances when it states none: the kubelet's
// default maxPods. It caps what a node runs when instances request no resources, and so
// what one plan costs: placements are at most the nodes times their MaxInstances.
const DefaultMaxInstances = 110

// Node is a cluster member as gossip reports it: everything but Alive is what the node
// says of itself, in its signed metadata, so that every node plans with the same values.
type Node struct {
	Name string `json:"name"`
	// Labels include kubernetes.io/hostname and topology.kubernetes.io/zone when known.
	Labels map[string]string `json:"labels,omitempty"`
	// Allocatable is what instances may reserve by their requests.
	Allocatable Resources `json:"allocatable"`
	// MaxInstances is how many instances the node may run, whatever their requests, as
	// the kubelet's maxPods; 0 means DefaultMaxInstances.
	MaxInstances int `json:"maxInstances,omitempty"`
	// Permissions is what the node lets instances ask for beyond the default sandbox; a
	// node is not chosen for an instance that asks for more.
	Permissions Permissions `json:"permissions"`
	// Alive is false for a member gossip suspects or declared dead; nothing is placed on it.
	Alive bool `json:"alive"`
}

// Instance is one instance running (or having run) somewhere, as gossip reports it.
type Instance struct {
	// ID is the InstanceID of the replica slot it was started for.
	ID        string `json:"id"`
	Namespace string `json:"namespace"`
	// Workload is the name of the Deployment.
	Workload string `json:"workload"`
	// Node is the name of the node it runs on.
	Node string `json:"node"`
	// SpecHash is the hash of the spec it runs; a different hash means it is outdated.
	SpecHash string `json:"specHash"`
	// Ready is true when its readiness probes pass.
	Ready bool `json:"ready"`
	// Running is true while its containers run (starting or ready); false once it failed or exited.
	Running bool `json:"running"`
}

// View is the cluster as one daemon sees it. Order does not matter: Plan sorts it.
type View struct {
	Nodes     []Node     `json:"nodes"`
	Instances []Instance `json:"instances"`
}
