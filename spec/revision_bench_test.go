package spec_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/shoalhq/shoal/planner"
	"github.com/shoalhq/shoal/spec"
)

// The largest revision the default limits allow, as close as a realistic manifest gets:
// 16 files of just under 4 MiB (62 MiB of the 64 allowed), 10,000 Deployments (the
// object limit) of 10 replicas each (100,000 replicas: the revision limit), each with
// 95 environment variables to fill its 6.6 KB.
const (
	maxRevisionFiles   = 16
	deploymentsPerFile = 625
	replicasEach       = 10
	envPerDeployment   = 95
	revisionNodes      = 1_000 // 110,000 instances of room at the default 110 per node
)

func writeMaxRevision(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	var env strings.Builder
	for i := range envPerDeployment {
		fmt.Fprintf(&env, "        - {name: SETTING_%04d, value: \"value-of-setting-%04d\"}\n", i, i)
	}
	for f := range maxRevisionFiles {
		var b strings.Builder
		for d := range deploymentsPerFile {
			name := fmt.Sprintf("app-%02d-%03d", f, d)
			fmt.Fprintf(&b, `---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
  labels: {app: %[1]s, team: team-%[2]d}
spec:
  replicas: %[3]d
  selector:
    matchLabels: {app: %[1]s}
  template:
    metadata:
      labels: {app: %[1]s, team: team-%[2]d}
    spec:
      containers:
      - name: main
        image: registry.example.com/%[1]s:1.0.0
        resources:
          requests: {cpu: 100m, memory: 64Mi}
        env:
%[4]s`, name, f, replicasEach, env.String())
		}
		if b.Len() > 4<<20 {
			tb.Fatalf("file of %d bytes is over the default limit", b.Len())
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("apps-%02d.yaml", f)), []byte(b.String()), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

// BenchmarkMaxRevisionPeakRSS loads and plans the largest revision the default limits
// allow on 1,000 nodes, in a fresh process per GOMAXPROCS, and reports its peak memory:
// what an agent needs to survive any commit its limits accept.
func BenchmarkMaxRevisionPeakRSS(b *testing.B) {
	dir := writeMaxRevision(b)
	for _, procs := range []int{1, 2, 8} {
		b.Run("GOMAXPROCS="+strconv.Itoa(procs), func(b *testing.B) {
			var peak int64
			for b.Loop() {
				peak = spec.PeakRSSOf(b, "TestMaxRevisionPeakRSSChild", dir, procs)
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-MiB")
		})
	}
}

// TestMaxRevisionPeakRSSChild is BenchmarkMaxRevisionPeakRSS's child process.
func TestMaxRevisionPeakRSSChild(t *testing.T) {
	dir := os.Getenv("SHOAL_PEAK_DIR")
	if dir == "" {
		t.Skip("run by BenchmarkMaxRevisionPeakRSS")
	}
	set, diags := spec.Load(os.DirFS(dir), spec.LoadOptions{})
	if set == nil {
		t.Fatalf("the revision at the limits does not load: %v", diags.Errors()[:1])
	}
	nodes := make([]planner.Node, revisionNodes)
	for i := range nodes {
		nodes[i] = planner.Node{Name: fmt.Sprintf("node-%04d", i), Alive: true,
			Allocatable: planner.Resources{MilliCPU: 64_000, MemoryBytes: 256 << 30}}
	}
	p := planner.Plan(spec.Desired{Revision: spec.Revision{Commit: "c0ffee"}, Objects: set}, planner.View{Nodes: nodes})
	if len(set.Deployments) != maxRevisionFiles*deploymentsPerFile || len(p.Assignments) != 100_000 {
		t.Fatalf("%d Deployments, %d replicas placed", len(set.Deployments), len(p.Assignments))
	}
	fmt.Printf("peak-rss-bytes=%d\n", spec.VmHWM(t))
}
