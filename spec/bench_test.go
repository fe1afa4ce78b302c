package spec

import (
	"fmt"
	"os"
	"path/filepath"
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
