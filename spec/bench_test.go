package spec

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// benchDeployment and benchService are realistic manifests of about 40 lines.
const benchDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-%[1]d
  labels:
    app: app-%[1]d
    app.kubernetes.io/part-of: bench
spec:
  replicas: 3
  selector:
    matchLabels:
      app: app-%[1]d
  template:
    metadata:
      labels:
        app: app-%[1]d
    spec:
      containers:
      - name: server
        image: registry.example.com/app-%[1]d:1.4.2
        ports:
        - name: http
          containerPort: 8080
        env:
        - name: PORT
          value: "8080"
        - name: LOG_LEVEL
          value: info
        readinessProbe:
          httpGet:
            path: /healthz
            port: http
          periodSeconds: 5
        resources:
          requests:
            cpu: 100m
            memory: 64Mi
          limits:
            cpu: 500m
            memory: 256Mi
`

const benchService = `apiVersion: v1
kind: Service
metadata:
  name: app-%[1]d
  labels:
    app: app-%[1]d
    app.kubernetes.io/part-of: bench
  annotations:
    description: front door of app %[1]d
spec:
  selector:
    app: app-%[1]d
  ports:
  - name: http
    port: 80
    targetPort: http
    protocol: TCP
  - name: metrics
    port: 9090
    targetPort: 9090
    protocol: TCP
`

// writeBenchRepo writes n manifest files, half Deployments and half Services, in
// directories of 100 files.
func writeBenchRepo(tb testing.TB, n int) string {
	tb.Helper()
	dir := tb.TempDir()
	for i := range n {
		sub := filepath.Join(dir, fmt.Sprintf("team-%02d", i/100))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			tb.Fatal(err)
		}
		kind, text := "deploy", benchDeployment
		if i%2 == 1 {
			kind, text = "svc", benchService
		}
		name := filepath.Join(sub, fmt.Sprintf("%s-%d.yaml", kind, i/2))
		if err := os.WriteFile(name, fmt.Appendf(nil, text, i/2), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

func BenchmarkLoad5000(b *testing.B) {
	fsys := os.DirFS(writeBenchRepo(b, 5000))
	b.ReportAllocs()
	for b.Loop() {
		set, diags := Load(fsys, LoadOptions{})
		if set == nil || len(set.Deployments) != 2500 || len(set.Services) != 2500 || len(diags) != 0 {
			b.Fatalf("unexpected load result: %v", diags)
		}
	}
}

// BenchmarkLoadPeakRSS loads revisions of 4 MiB files of tiny YAML nodes, in a
// fresh process per GOMAXPROCS, and reports that process's peak resident memory:
//   - lists: eight files, each one flat list of 2 million items, refused by the pre-scan;
//   - dense: eight files, each ten documents [? a, ? a, …] of 99,990 single-pair
//     mappings, the densest the pre-scan lets the parser build (three nodes for
//     each it counts, about 300,000 a document, refused by checkShape once built);
//   - dense-small: 100 files of one such document.
//
// What a load costs must not grow with the number of CPUs.
func BenchmarkLoadPeakRSS(b *testing.B) {
	list := append([]byte{'['}, bytes.Repeat([]byte("0,"), 2<<20-1)...)
	list[len(list)-1] = ']'
	doc := append(append([]byte("---\n["), bytes.Repeat([]byte("? a,"), 99_990)...), "]\n"...)
	dense := bytes.Repeat(doc, 10)
	for _, rev := range []struct {
		name  string
		file  []byte
		files int
	}{{"lists", list, 8}, {"dense", dense, 8}, {"dense-small", doc, 100}} {
		dir := b.TempDir()
		for i := range rev.files {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f-%d.yaml", i)), rev.file, 0o644); err != nil {
				b.Fatal(err)
			}
		}
		for _, procs := range []int{1, 2, 8} {
			b.Run(fmt.Sprintf("%s/GOMAXPROCS=%d", rev.name, procs), func(b *testing.B) {
				var peak int64
				for b.Loop() {
					peak = peakRSSOf(b, "TestLoadPeakRSSChild", dir, procs)
				}
				b.ReportMetric(float64(peak)/(1<<20), "peak-MiB")
			})
		}
	}
}

// peakRSSOf runs the test named child of this test binary in a new process, with
// SHOAL_PEAK_DIR=dir and GOMAXPROCS=procs, and returns the peak RSS it printed.
func peakRSSOf(tb testing.TB, child, dir string, procs int) int64 {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+child+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SHOAL_PEAK_DIR="+dir, fmt.Sprintf("GOMAXPROCS=%d", procs))
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("%s: %v\n%s", child, err, out)
	}
	_, rest, ok := bytes.Cut(out, []byte("peak-rss-bytes="))
	if !ok {
		tb.Fatalf("%s printed no peak:\n%s", child, out)
	}
	var peak int64
	if _, err := fmt.Sscan(string(rest), &peak); err != nil {
		tb.Fatalf("%s: %v", child, err)
	}
	return peak
}

// TestLoadPeakRSSChild is BenchmarkLoadPeakRSS's child process: it loads SHOAL_PEAK_DIR
// and prints its peak RSS (VmHWM).
func TestLoadPeakRSSChild(t *testing.T) {
	dir := os.Getenv("SHOAL_PEAK_DIR")
	if dir == "" {
		t.Skip("run by BenchmarkLoadPeakRSS")
	}
	Load(os.DirFS(dir), LoadOptions{})
	fmt.Printf("peak-rss-bytes=%d\n", vmHWM(t))
}

// vmHWM is this process's peak resident set size, from /proc/self/status.
func vmHWM(tb testing.TB) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), &kb)
			return kb << 10
		}
	}
	tb.Fatal("no VmHWM in /proc/self/status")
	return 0
}
