package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoalhq/shoal/planner"
)

// clusterManifests asks for labels the test cluster has and labels it has not.
const clusterManifests = `apiVersion: apps/v1
kind: Deployment
metadata: {name: fast}
spec:
  selector: {matchLabels: {app: fast}}
  template:
    metadata: {labels: {app: fast}}
    spec:
      nodeSelector: {disktype: ssd, kubernetes.io/os: linux}
      containers: [{name: main, image: "hello:v1"}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: zoned}
spec:
  selector: {matchLabels: {app: zoned}}
  template:
    metadata: {labels: {app: zoned}}
    spec:
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
            - matchExpressions: [{key: topology.kubernetes.io/zone, operator: In, values: [eu-1]}]
            - matchExpressions: [{key: gpu, operator: Exists}]
      containers: [{name: main, image: "hello:v1"}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: placeable}
spec:
  selector: {matchLabels: {app: placeable}}
  template:
    metadata: {labels: {app: placeable}}
    spec:
      nodeSelector: {beta.kubernetes.io/arch: amd64}
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
            - matchExpressions: [{key: gpu, operator: Exists}]
            - matchExpressions: [{key: topology.kubernetes.io/zone, operator: In, values: [eu-2]}]
      containers: [{name: main, image: "hello:v1"}]
`

func TestValidateClusterWarnsAboutLabelsNoNodeCarries(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "apps/apps.yaml", clusterManifests)
	view := planner.View{Nodes: []planner.Node{
		{Name: "b", Labels: map[string]string{"kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64", "topology.kubernetes.io/zone": "eu-2"}},
		{Name: "a", Labels: map[string]string{"kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64"}},
	}}
	agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/view" || r.Header.Get("Authorization") != "Bearer validate-cluster-token" {
			http.Error(w, "no", http.StatusNotFound)
			return
		}
		json.NewEncoder(w).Encode(view)
	}))
	defer agent.Close()
	t.Setenv("SHOAL_TOKEN", "validate-cluster-token")
	write(t, dir, "cluster/nodes.yaml", "nodes:\n- {name: a, labels: {kubernetes.io/os: linux, beta.kubernetes.io/arch: amd64}, cpu: '1', memory: 1Gi}\n"+
		"- {name: b, labels: {kubernetes.io/os: linux, beta.kubernetes.io/arch: amd64, topology.kubernetes.io/zone: eu-2}, cpu: '1', memory: 1Gi}\n")
	want := []string{
		`apps.yaml:1: spec.template.spec.nodeSelector: warning: nodeSelector disktype=ssd: no node carries this label (nodes: a, b)`,
		`apps.yaml:12: spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution: warning: required node affinity topology.kubernetes.io/zone in (eu-1): no node carries this label (nodes: a, b)`,
		`apps.yaml:12: spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution: warning: required node affinity gpu: no node carries this label (nodes: a, b)`,
	}
	for _, args := range [][]string{
		{"--cluster-from", agent.Listener.Addr().String()},
		{"--cluster", filepath.Join(dir, "cluster", "nodes.yaml")},
	} {
		code, out, errOut := shoal(t, append([]string{"validate", filepath.Join(dir, "apps")}, args...)...)
		// The manifests are valid: the warnings do not change the exit code.
		if got := strings.Split(strings.TrimSpace(out), "\n"); code != 0 || strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%v: exit %d, findings\n%s\nwant\n%s\n(stderr %s)", args, code, out, strings.Join(want, "\n"), errOut)
		}
	}
	// Without a cluster, none of these is a finding.
	if code, out, _ := shoal(t, "validate", filepath.Join(dir, "apps")); code != 0 || out != "" {
		t.Errorf("without --cluster: exit %d, findings %q", code, out)
	}
}

// diskSize finds the filesystem a state directory will be on before it exists.
func TestDiskSizeOfADirectoryNotYetMade(t *testing.T) {
	dir := t.TempDir()
	if got, want := diskSize(filepath.Join(dir, "not", "yet")), diskSize(dir); got <= 0 || got != want {
		t.Errorf("diskSize = %d, want %d (that of the nearest existing parent), > 0", got, want)
	}
}
