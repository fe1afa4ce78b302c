package testsupport

import (
	"testing"
	"testing/fstest"

	"github.com/shoalhq/shoal/spec"
)

// The builder's manifests are valid Deployments, with and without the optional fields.
func TestDeploymentIsValid(t *testing.T) {
	for _, d := range []Deployment{
		{Name: "web", Replicas: 2, Image: "nginx:1.25"},
		{Name: "hello", Replicas: 1, Container: "hello", Image: "hello:v1", GracePeriod: 2,
			ContainerYAML: "        ports:\n        - containerPort: 8080\n"},
	} {
		set, diags := spec.Load(fstest.MapFS{"d.yaml": {Data: []byte(d.YAML())}}, spec.DefaultLoadOptions())
		if set == nil || len(diags.Errors()) > 0 {
			t.Fatalf("%s: %v\n%s", d.Name, diags, d.YAML())
		}
		got := set.Deployment(spec.DefaultNamespace, d.Name)
		if got == nil || int(*got.Spec.Replicas) != d.Replicas || got.Spec.Template.Spec.Containers[0].Image != d.Image {
			t.Errorf("%s: loaded %+v", d.Name, got)
		}
	}
}

// Commit pushes to the bare remote, where Shoal fetches from.
func TestRemoteCommitIsPushed(t *testing.T) {
	r := NewRemote(t)
	c := r.Commit("one", map[string]string{"dir/a.yaml": "a: 1\n"})
	if got := r.run(r.Bare, "rev-parse", "main"); got != c {
		t.Errorf("remote main = %s, want %s", got, c)
	}
	r.Commit("delete", map[string]string{"dir/a.yaml": ""})
	if got := r.Git("ls-files"); got != "" {
		t.Errorf("files after delete: %q", got)
	}
}
