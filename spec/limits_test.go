package spec

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// deploymentWithReplicas is minimalDeployment named name with spec.replicas on line 6.
func deploymentWithReplicas(name string, replicas int64) string {
	return strings.Replace(strings.ReplaceAll(minimalDeployment, "web", name), "spec:\n", fmt.Sprintf("spec:\n  replicas: %d\n", replicas), 1)
}

// TestBillionReplicasRejected is the attack of issue #8: `replicas: 1000000000` used to
// load, and every daemon ran out of memory planning it. It must be refused with the limit
// named, at the file, line and field.
func TestBillionReplicasRejected(t *testing.T) {
	fsys := fstest.MapFS{"apps/web.yaml": {Data: []byte(deploymentWithReplicas("web", 1_000_000_000))}}
	set, diags := Load(fsys, LoadOptions{})
	want := []string{"apps/web.yaml:6: spec.replicas: 1000000000 replicas is over the limit of 10,000 per Deployment (max-replicas-per-deployment)"}
	if got := diagStrings(diags); set != nil || !slices.Equal(got, want) {
		t.Fatalf("set %v, diagnostics:\n got  %q\n want %q", set, got, want)
	}
}

func TestRevisionLimits(t *testing.T) {
	tests := []struct {
		name  string
		files fstest.MapFS
		opts  LoadOptions
		want  []string
	}{
		{
			name:  "replicas per Deployment at the limit",
			files: fstest.MapFS{"a.yaml": {Data: []byte(deploymentWithReplicas("a", 5))}},
			opts:  LoadOptions{MaxReplicasPerDeployment: 5},
		},
		{
			name: "replicas per revision",
			files: fstest.MapFS{
				"a.yaml": {Data: []byte(deploymentWithReplicas("a", 4))},
				"b.yaml": {Data: []byte(deploymentWithReplicas("b", 4) + "---\n" + deploymentWithReplicas("c", 4))},
			},
			opts: LoadOptions{MaxReplicasPerRevision: 10},
			want: []string{"b.yaml:24: spec.replicas: the revision asks for more than 10 replicas in all Deployments (max-replicas-per-revision)"},
		},
		{
			name: "a Deployment over its limit counts at the limit in the revision's",
			files: fstest.MapFS{
				"a.yaml": {Data: []byte(deploymentWithReplicas("a", 1_000_000))},
				"b.yaml": {Data: []byte(deploymentWithReplicas("b", 5))},
			},
			opts: LoadOptions{MaxReplicasPerDeployment: 10, MaxReplicasPerRevision: 15},
			want: []string{"a.yaml:6: spec.replicas: 1000000 replicas is over the limit of 10 per Deployment (max-replicas-per-deployment)"},
		},
		{
			name: "objects per revision",
			files: fstest.MapFS{
				"a.yaml": {Data: []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n")},
				"b.yaml": {Data: []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: c}\n")},
			},
			opts: LoadOptions{MaxObjects: 2},
			want: []string{"b.yaml:1: the revision has 3 objects, over the limit of 2 (max-objects-per-revision)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, diags := Load(tt.files, tt.opts)
			if got := diagStrings(diags); !slices.Equal(got, tt.want) || (set == nil) != (len(tt.want) > 0) {
				t.Errorf("set %v, diagnostics:\n got  %q\n want %q", set != nil, got, tt.want)
			}
		})
	}
}

func TestFormatCount(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 100_000: "100,000", 1_234_567: "1,234,567"} {
		if got := formatCount(n); got != want {
			t.Errorf("formatCount(%d) = %q, want %q", n, got, want)
		}
	}
}
