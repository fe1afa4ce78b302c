package agent

import (
	"log/slog"
	"net/netip"
	"testing"

	"github.com/shoalhq/shoal/executor"
	"github.com/shoalhq/shoal/planner"
	"github.com/shoalhq/shoal/spec"
)

// The node gives every instance it resolves what the Downward API reports of the node: its
// address, the instance's own address, and its allocatable resources for limits a
// container does not set.
func TestResolveOptionsGiveTheDownwardAPI(t *testing.T) {
	cfg := DefaultConfig("node-a")
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.NodeAddr = "192.0.2.7"
	cfg.Allocatable = planner.Resources{MilliCPU: 4000, MemoryBytes: 2 << 30}
	cfg.EphemeralStorageBytes = 10 << 30
	c := newCore(cfg, false, DNSConfig{})
	in := &instance{id: "web-abc-0", namespace: "default", workload: "web", addr: netip.MustParseAddr("10.244.0.9")}
	ref := func(name string, src spec.EnvVarSource) spec.EnvVar { return spec.EnvVar{Name: name, ValueFrom: &src} }
	field := func(path string) spec.EnvVarSource {
		return spec.EnvVarSource{FieldRef: &spec.ObjectFieldSelector{FieldPath: path}}
	}
	resource := func(r string) spec.EnvVarSource {
		return spec.EnvVarSource{ResourceFieldRef: &spec.ResourceFieldSelector{Resource: r}}
	}
	d := &spec.Deployment{
		Metadata: spec.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: spec.DeploymentSpec{Template: spec.PodTemplate{Spec: spec.PodSpec{Containers: []spec.Container{{
			Name: "app", Image: "hello:v1",
			Env: []spec.EnvVar{
				ref("HOST", field("status.hostIP")), ref("POD", field("status.podIP")), ref("NODE", field("spec.nodeName")),
				ref("CPU", resource("limits.cpu")), ref("MEM", resource("limits.memory")), ref("DISK", resource("limits.ephemeral-storage")),
			},
		}}}}},
	}
	s, err := executor.Resolve(&spec.Set{Deployments: []*spec.Deployment{d}}, d, in.id, cfg.NodeName, "rev1", c.resolveOptions(in)...)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range s.Containers[0].Env {
		got[e.Name] = e.Value
	}
	want := map[string]string{"HOST": "192.0.2.7", "POD": "10.244.0.9", "NODE": "node-a",
		"CPU": "4", "MEM": "2147483648", "DISK": "10737418240"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}
