package examples

import (
	"os"
	"testing"

	"github.com/shoalhq/shoal/executor"
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
