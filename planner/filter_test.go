package planner

import (
	"strconv"
	"testing"

	"github.com/shoalhq/shoal/spec"
)

func TestFitResources(t *testing.T) {
	alloc := Resources{MilliCPU: 1000, MemoryBytes: 1000}
	tests := []struct {
		name       string
		used, req  Resources
		wantReason reason
	}{
		{"fits", Resources{500, 500}, Resources{500, 500}, fits},
		{"cpu over by one", Resources{500, 0}, Resources{501, 1}, insufficientCPU},
		{"memory over by one", Resources{0, 999}, Resources{1, 2}, insufficientMemory},
		{"both over reports cpu", Resources{1000, 1000}, Resources{1, 1}, insufficientCPU},
		{"zero request fits a full node", Resources{1000, 1000}, Resources{}, fits},
		{"zero request fits an overcommitted node", Resources{2000, 2000}, Resources{}, fits},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fitResources(alloc, tt.used.MilliCPU, tt.used.MemoryBytes, tt.req); got != tt.wantReason {
				t.Errorf("fitResources = %v, want %v", got, tt.wantReason)
			}
		})
	}
}

func TestPortsFree(t *testing.T) {
	tcp := func(p uint32) uint32 { return p << 1 }
	udp := func(p uint32) uint32 { return p<<1 | 1 }
	tests := []struct {
		name       string
		used, want []uint32
		free       bool
	}{
		{"nothing used", nil, []uint32{tcp(80)}, true},
		{"nothing wanted", []uint32{tcp(80)}, nil, true},
		{"same port and protocol", []uint32{tcp(80), tcp(443)}, []uint32{tcp(443)}, false},
		{"same port, other protocol", []uint32{tcp(53)}, []uint32{udp(53)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := portsFree(tt.used, tt.want); got != tt.free {
				t.Errorf("portsFree = %v, want %v", got, tt.free)
			}
		})
	}
}

func TestUnavailableWording(t *testing.T) {
	var counts [numReasons]int
	counts[insufficientMemory] = 3
	counts[antiAffinityMismatch] = 2
	counts[notAlive] = 2
	want := "0/7 nodes are available: 3 insufficient memory, 2 node(s) didn't match pod anti-affinity rules, 2 node(s) not alive."
	if got := unavailable(&counts, nil, 7); got != want {
		t.Errorf("unavailable =\n%q\nwant\n%q", got, want)
	}
	var none [numReasons]int
	if got := unavailable(&none, nil, 0); got != "0/0 nodes are available." {
		t.Errorf("unavailable with no nodes = %q", got)
	}
}

// outcome is where a slot went: the node's name, or "unplaced: " and the reason.
func outcome(p Placement, workload string, slot int) string {
	for _, a := range p.Assignments {
		if a.Workload == workload && a.Slot == slot {
			return a.Node
		}
	}
	for _, u := range p.Unplaced {
		if u.Workload == workload && u.Slot == slot {
			return "unplaced: " + u.Reason
		}
	}
	return "missing"
}

func small(name, zone string) Node {
	n := node(name, zone)
	n.Allocatable = Resources{MilliCPU: 1000, MemoryBytes: 1 * gi}
	return n
}

func dead(n Node) Node {
	n.Alive = false
	return n
}

func labelled(n Node, kv ...string) Node {
	for i := 0; i < len(kv); i += 2 {
		n.Labels[kv[i]] = kv[i+1]
	}
	return n
}

// Each filter, seen through Plan: a case's cluster leaves the replica one node or none, and
// the outcome names the node or counts the refusals.
func TestFilters(t *testing.T) {
	tests := []struct {
		name      string
		nodes     []Node
		deps      []*spec.Deployment
		instances []Instance
		workload  string
		slot      int
		want      string
	}{
		{
			name:  "dead node refused",
			nodes: []Node{dead(node("a", "z0")), node("b", "z0")},
			deps:  []*spec.Deployment{dep("web", 1)}, workload: "web", want: "b",
		},
		{
			name:  "only dead nodes",
			nodes: []Node{dead(node("a", "z0")), dead(node("b", "z0"))},
			deps:  []*spec.Deployment{dep("web", 1)}, workload: "web",
			want: "unplaced: 0/2 nodes are available: 2 node(s) not alive.",
		},
		{
			name:  "cpu request larger than any node",
			nodes: []Node{small("a", "z0"), node("b", "z0")},
			deps:  []*spec.Deployment{dep("web", 1, requests("4001m", ""))}, workload: "web",
			want: "unplaced: 0/2 nodes are available: 2 insufficient cpu (less than 4001m free on each).",
		},
		{
			name:  "memory fits only the big node",
			nodes: []Node{small("a", "z0"), node("b", "z0")},
			deps:  []*spec.Deployment{dep("web", 1, requests("", "2Gi"))}, workload: "web", want: "b",
		},
		{
			name:  "requests add up over containers and replicas",
			nodes: []Node{small("a", "z0")},
			deps: []*spec.Deployment{dep("web", 3, requests("300m", "100Mi"), func(d *spec.Deployment) {
				side := d.Spec.Template.Spec.Containers[0]
				side.Name = "sidecar"
				d.Spec.Template.Spec.Containers = append(d.Spec.Template.Spec.Containers, side)
			})},
			workload: "web", slot: 1,
			want: "unplaced: 0/1 nodes are available: 1 insufficient cpu (less than 600m free on each; used most by default/web).",
		},
		{
			// The init container runs alone, before the app: the instance reserves the
			// larger of the two, as Kubernetes does, not their sum.
			name:     "an init container larger than the app reserves its own request",
			nodes:    []Node{node("a", "z0")},
			deps:     []*spec.Deployment{dep("web", 1, requests("1", ""), withInit("3500m", false))},
			workload: "web", want: "a",
		},
		{
			// A sidecar runs beside the app: 600m + 600m is more than the small node has.
			name:     "a sidecar adds to the app",
			nodes:    []Node{small("a", "z0")},
			deps:     []*spec.Deployment{dep("web", 1, requests("600m", ""), withInit("600m", true))},
			workload: "web", want: "unplaced: 0/1 nodes are available: 1 insufficient cpu (less than 1200m free on each).",
		},
		{
			name:  "a limit stands in for a missing request",
			nodes: []Node{small("a", "z0")},
			deps: []*spec.Deployment{dep("web", 1, func(d *spec.Deployment) {
				d.Spec.Template.Spec.Containers[0].Resources.Limits = map[string]spec.Quantity{spec.ResourceMemory: spec.MustQuantity("2Gi")}
			})},
			workload: "web", want: "unplaced: 0/1 nodes are available: 1 insufficient memory (less than 2Gi free on each).",
		},
		{
			name:  "running instances use capacity",
			nodes: []Node{small("a", "z0")},
			deps:  []*spec.Deployment{dep("web", 1, requests("600m", "")), dep("api", 1, requests("600m", ""))},
			instances: []Instance{{ID: InstanceID("default", "web", spec.InstanceHash(nil, dep("web", 1, requests("600m", ""))), 0),
				Namespace: "default", Workload: "web", Node: "a", SpecHash: spec.InstanceHash(nil, dep("web", 1, requests("600m", ""))), Running: true, Ready: true}},
			workload: "api", want: "unplaced: 0/1 nodes are available: 1 insufficient cpu (less than 600m free on each; used most by default/web).",
		},
		{
			name:  "nodeSelector",
			nodes: []Node{node("a", "z0"), labelled(node("b", "z0"), "disk", "ssd")},
			deps:  []*spec.Deployment{dep("web", 1, nodeSelector("disk", "ssd"))}, workload: "web", want: "b",
		},
		{
			name:  "nodeSelector matches none",
			nodes: []Node{node("a", "z0"), dead(labelled(node("b", "z0"), "disk", "ssd"))},
			deps:  []*spec.Deployment{dep("web", 1, nodeSelector("disk", "ssd"))}, workload: "web",
			want: "unplaced: 0/2 nodes are available: 1 node(s) didn't match node selector, 1 node(s) not alive.",
		},
		{
			name:  "nodeSelector on the hostname a node lacks as a label",
			nodes: []Node{{Name: "a", Allocatable: Resources{1000, gi}, Alive: true}, {Name: "b", Allocatable: Resources{1000, gi}, Alive: true}},
			deps:  []*spec.Deployment{dep("web", 1, nodeSelector(LabelHostname, "b"))}, workload: "web", want: "b",
		},
		{
			name:  "required node affinity Gt",
			nodes: []Node{labelled(node("a", "z0"), "gen", "2"), labelled(node("b", "z0"), "gen", "3")},
			deps:  []*spec.Deployment{dep("web", 1, requiredNodeAffinity(req("gen", spec.OpGt, "2")))}, workload: "web", want: "b",
		},
		{
			name:  "required node affinity DoesNotExist",
			nodes: []Node{labelled(node("a", "z0"), "tainted", "yes"), node("b", "z0")},
			deps:  []*spec.Deployment{dep("web", 1, requiredNodeAffinity(req("tainted", spec.OpDoesNotExist)))}, workload: "web", want: "b",
		},
		{
			name:  "required node affinity matches none",
			nodes: []Node{node("a", "z0"), node("b", "z1")},
			deps:  []*spec.Deployment{dep("web", 1, requiredNodeAffinity(req(LabelZone, spec.OpNotIn, "z0", "z1")))}, workload: "web",
			want: "unplaced: 0/2 nodes are available: 2 node(s) didn't match node affinity.",
		},
		{
			name:  "host port taken by another workload",
			nodes: []Node{node("a", "z0")},
			deps:  []*spec.Deployment{dep("api", 1, ports(8080)), dep("web", 1, ports(8080))}, workload: "web",
			want: "unplaced: 0/1 nodes are available: 1 node(s) didn't have free ports for the requested ports (host port 8080/TCP held by default/api).",
		},
		{
			name:  "host port taken by the same workload",
			nodes: []Node{node("a", "z0"), node("b", "z0")},
			deps:  []*spec.Deployment{dep("web", 3, ports(8080))}, workload: "web", slot: 2,
			want: "unplaced: 0/2 nodes are available: 2 node(s) didn't have free ports for the requested ports (host port 8080/TCP held by default/web).",
		},
		{
			name:  "same port over UDP does not conflict",
			nodes: []Node{node("a", "z0")},
			deps: []*spec.Deployment{dep("api", 1, ports(53)), dep("web", 1, func(d *spec.Deployment) {
				d.Spec.Template.Spec.Containers[0].Ports = []spec.ContainerPort{{ContainerPort: 53, Protocol: spec.ProtocolUDP}}
			})},
			workload: "web", want: "a",
		},
		{
			name:  "same port over SCTP does not conflict with TCP or UDP",
			nodes: []Node{node("a", "z0")},
			deps: []*spec.Deployment{dep("api", 1, func(d *spec.Deployment) {
				d.Spec.Template.Spec.Containers[0].Ports = []spec.ContainerPort{{ContainerPort: 3868, Protocol: spec.ProtocolTCP}, {ContainerPort: 3868, Protocol: spec.ProtocolUDP}}
			}), dep("web", 1, func(d *spec.Deployment) {
				d.Spec.Template.Spec.Containers[0].Ports = []spec.ContainerPort{{ContainerPort: 3868, Protocol: spec.ProtocolSCTP}}
			})},
			workload: "web", want: "a",
		},
		{
			name:  "same SCTP port conflicts",
			nodes: []Node{node("a", "z0")},
			deps: []*spec.Deployment{dep("api", 1, func(d *spec.Deployment) {
				d.Spec.Template.Spec.Containers[0].Ports = []spec.ContainerPort{{ContainerPort: 3868, Protocol: spec.ProtocolSCTP}}
			}), dep("web", 1, func(d *spec.Deployment) {
				d.Spec.Template.Spec.Containers[0].Ports = []spec.ContainerPort{{ContainerPort: 3868, Protocol: spec.ProtocolSCTP}}
			})},
			workload: "web", want: "unplaced: 0/1 nodes are available: 1 node(s) didn't have free ports for the requested ports (host port 3868/SCTP held by default/api).",
		},
		{
			name:  "anti-affinity by hostname",
			nodes: []Node{node("a", "z0"), node("b", "z0")},
			deps:  []*spec.Deployment{dep("web", 3, antiAffinity("web", LabelHostname))}, workload: "web", slot: 2,
			want: "unplaced: 0/2 nodes are available: 2 node(s) didn't match pod anti-affinity rules.",
		},
		{
			name:  "anti-affinity by zone",
			nodes: []Node{node("a", "z0"), node("b", "z0"), node("c", "z1")},
			deps:  []*spec.Deployment{dep("web", 3, antiAffinity("web", LabelZone))}, workload: "web", slot: 2,
			want: "unplaced: 0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules.",
		},
		{
			name:  "anti-affinity by any label",
			nodes: []Node{labelled(node("a", "z0"), "rack", "r1"), labelled(node("b", "z0"), "rack", "r1"), labelled(node("c", "z0"), "rack", "r2")},
			deps:  []*spec.Deployment{dep("web", 3, antiAffinity("web", "rack"))}, workload: "web", slot: 2,
			want: "unplaced: 0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules.",
		},
		{
			name:  "existing instances' anti-affinity is honoured both ways",
			nodes: []Node{node("a", "z0")},
			deps:  []*spec.Deployment{dep("guard", 1, antiAffinity("web", LabelHostname)), dep("web", 1)}, workload: "web",
			want: "unplaced: 0/1 nodes are available: 1 node(s) didn't satisfy existing instances' anti-affinity rules.",
		},
		{
			name:  "anti-affinity looks only in the term's namespaces",
			nodes: []Node{node("a", "z0")},
			deps:  []*spec.Deployment{dep("guard", 1, antiAffinity("web", LabelHostname)), dep("web", 1, inNamespace("other"))}, workload: "web",
			want: "a",
		},
		{
			name:  "pod affinity joins the zone of what it needs",
			nodes: []Node{node("a", "z0"), node("b", "z1"), node("c", "z0")},
			deps:  []*spec.Deployment{dep("cache", 1, nodeSelector(LabelHostname, "b")), dep("web", 1, podAffinity("cache", LabelZone))}, workload: "web",
			want: "b",
		},
		{
			name:  "pod affinity to nothing",
			nodes: []Node{node("a", "z0"), node("b", "z1")},
			deps:  []*spec.Deployment{dep("web", 1, podAffinity("cache", LabelZone))}, workload: "web",
			want: "unplaced: 0/2 nodes are available: 2 node(s) didn't match pod affinity rules.",
		},
		{
			name:  "pod affinity placed before what it needs waits for it",
			nodes: []Node{node("a", "z0"), node("b", "z1")},
			deps:  []*spec.Deployment{dep("a-web", 1, podAffinity("z-cache", LabelZone)), dep("z-cache", 1, nodeSelector(LabelZone, "z1"), podAffinity("z-cache", LabelZone))}, workload: "a-web",
			want: "b",
		},
		{
			name:  "topology spread DoNotSchedule",
			nodes: []Node{node("a", "z0"), small("b", "z1")},
			deps:  []*spec.Deployment{dep("web", 4, requests("800m", ""), spread(LabelZone, 1, spec.DoNotSchedule))}, workload: "web", slot: 3,
			want: "unplaced: 0/2 nodes are available: 1 insufficient cpu (less than 800m free on each; used most by default/web), 1 node(s) didn't match pod topology spread constraints.",
		},
		{
			name:  "topology spread needs the label",
			nodes: []Node{{Name: "a", Allocatable: Resources{1000, gi}, Alive: true}},
			deps:  []*spec.Deployment{dep("web", 1, spread(LabelZone, 1, spec.DoNotSchedule))}, workload: "web",
			want: "unplaced: 0/1 nodes are available: 1 node(s) didn't have the topology spread label.",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := plan(desired(tt.deps...), View{Nodes: tt.nodes, Instances: tt.instances})
			if got := outcome(p, tt.workload, tt.slot); got != tt.want {
				t.Errorf("slot %d of %s: got %q, want %q", tt.slot, tt.workload, got, tt.want)
			}
		})
	}
}

// A self-affine group must end up in one domain; the first replica picks it.
func TestSelfAffinityKeepsGroupTogether(t *testing.T) {
	nodes := cluster(9, 3)
	zoneOf := map[string]string{}
	for _, n := range nodes {
		zoneOf[n.Name] = n.Labels[LabelZone]
	}
	for seed := range 20 {
		name := "grp" + strconv.Itoa(seed)
		p := plan(desired(dep(name, 5, podAffinity(name, LabelZone))), View{Nodes: nodes})
		zones := map[string]bool{}
		for _, a := range p.Assignments {
			zones[zoneOf[a.Node]] = true
		}
		if len(p.Assignments) != 5 || len(zones) != 1 {
			t.Fatalf("%s: placed %d replicas over zones %v, want 5 in one zone", name, len(p.Assignments), zones)
		}
	}
}

// withInit adds an init container (a sidecar when sidecar) requesting cpu.
func withInit(cpu string, sidecar bool) func(*spec.Deployment) {
	return func(d *spec.Deployment) {
		c := spec.Container{Name: "init", Image: "registry.local/init:1",
			Resources: spec.Resources{Requests: map[string]spec.Quantity{spec.ResourceCPU: spec.MustQuantity(cpu)}}}
		if sidecar {
			always := spec.ContainerRestartAlways
			c.RestartPolicy = &always
		}
		d.Spec.Template.Spec.InitContainers = append(d.Spec.Template.Spec.InitContainers, c)
	}
}
