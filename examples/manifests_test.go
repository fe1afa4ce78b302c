package examples

import (
	"maps"
	"os"
	"slices"
	"testing"

	"github.com/shoalhq/shoal/executor"
	"github.com/shoalhq/shoal/planner"
	"github.com/shoalhq/shoal/spec"
)

// TestManifestsLoad keeps the demo's manifests loadable without errors or warnings, and
// pointed at the images build-images pushes.
func TestManifestsLoad(t *testing.T) {
	set, diags := spec.Load(os.DirFS("manifests"), spec.LoadOptions{})
	if len(diags) > 0 {
		t.Fatalf("examples/manifests:\n%v", diags)
	}
	d := set.Deployment("default", "hello")
	if d == nil || set.Service("default", "hello") == nil || set.ConfigMap("default", "hello") == nil {
		t.Fatalf("want Deployment, Service and ConfigMap default/hello, have %v", set.Objects())
	}
	if img := d.Spec.Template.Spec.Containers[0].Image; img != "127.0.0.1:5000/hello:v1" {
		t.Errorf("image %s, want 127.0.0.1:5000/hello:v1 (what the demo's registry serves)", img)
	}
	inst, err := executor.Resolve(set, d, "hello-0", "node-a", "c0ffee")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, e := range inst.Containers[0].Env {
		env[e.Name] = e.Value
	}
	if env["PORT"] != "8080" || env["MESSAGE"] != "hello from shoal" {
		t.Errorf("resolved env %v, want PORT 8080 and MESSAGE from the ConfigMap", env)
	}
}

// demoNodes are the three nodes of examples/demo/demo.sh: 1 CPU and 1 GiB each.
func demoNodes() []planner.Node {
	var nodes []planner.Node
	for _, name := range []string{"node1", "node2", "node3"} {
		nodes = append(nodes, planner.Node{
			Name: name, Alive: true, Labels: map[string]string{planner.LabelHostname: name},
			Allocatable: planner.Resources{MilliCPU: 1000, MemoryBytes: 1 << 30},
		})
	}
	return nodes
}

// TestManifestsNeedThePodNetwork keeps the demo showing the Kubernetes network model:
// Services whose port differs from the targetPort they reach by name, NodePorts for the
// user, and more backends than nodes, which only fit because each instance has an address
// of its own (on the nodes' network, a containerPort is a node resource).
func TestManifestsNeedThePodNetwork(t *testing.T) {
	set, diags := spec.Load(os.DirFS("manifests"), spec.LoadOptions{})
	if len(diags) > 0 {
		t.Fatalf("examples/manifests:\n%v", diags)
	}
	tests := []struct {
		service, deployment string
		port, target        int32
		nodePort            int32 // 0: a ClusterIP Service
	}{
		{"backend", "backend", 80, 9090, 0},
		{"frontend", "frontend", 80, 8081, 30081},
		{"hello", "hello", 80, 8080, 30080},
	}
	for _, tt := range tests {
		s, d := set.Service("default", tt.service), set.Deployment("default", tt.deployment)
		if s == nil || d == nil || len(s.Spec.Ports) != 1 {
			t.Fatalf("want Service and Deployment default/%s with one port", tt.service)
		}
		p := s.Spec.Ports[0]
		if p.Port != tt.port || p.NodePort != tt.nodePort || (tt.nodePort != 0) != (s.Spec.Type == "NodePort") {
			t.Errorf("Service %s: type %q port %d nodePort %d, want port %d nodePort %d", tt.service, s.Spec.Type, p.Port, p.NodePort, tt.port, tt.nodePort)
		}
		if got := targetPort(d, p); got != tt.target {
			t.Errorf("Service %s: targetPort %v reaches container port %d, want %d", tt.service, p.TargetPort, got, tt.target)
		}
	}
	inst, err := executor.Resolve(set, set.Deployment("default", "frontend"), "frontend-0", "node1", "c0ffee")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(inst.Containers[0].Env, executor.EnvVar{Name: "UPSTREAM", Value: "http://backend/"}) {
		t.Errorf("frontend env %v, want UPSTREAM http://backend/ (the Service's port 80)", inst.Containers[0].Env)
	}

	desired := spec.Desired{Revision: spec.Revision{Commit: "c0ffee"}, Objects: set}
	view := planner.View{Nodes: demoNodes()}
	placed := planner.New(nil).WithPodNetwork(true).Plan(desired, view)
	if len(placed.Unplaced) > 0 {
		t.Fatalf("on the pod network, unplaced: %+v", placed.Unplaced)
	}
	backends := map[string]int{}
	for _, a := range placed.Assignments {
		if a.Workload == "backend" {
			backends[a.Node]++
		}
	}
	if len(backends) != 3 || slices.Max(slices.Collect(maps.Values(backends))) < 2 {
		t.Errorf("backends per node %v, want all three nodes used and several on one", backends)
	}
	if off := planner.New(nil).WithPodNetwork(false).Plan(desired, view); len(off.Unplaced) == 0 {
		t.Error("on the nodes' network every replica fits: the demo no longer shows what the pod network adds")
	}
}

// targetPort is the container port of d that the Service port p reaches.
func targetPort(d *spec.Deployment, p spec.ServicePort) int32 {
	if !p.TargetPort.IsString {
		return p.TargetPort.Int
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		for _, cp := range c.Ports {
			if cp.Name == p.TargetPort.Str {
				return cp.ContainerPort
			}
		}
	}
	return 0
}
