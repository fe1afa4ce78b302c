package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoalhq/shoal/internal/testsupport"
)

// shoal runs the CLI in-process and returns its exit code, stdout and stderr.
func shoal(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestValidateNginxFromTheKubernetesDocs(t *testing.T) {
	code, out, errOut := shoal(t, "validate", "../../spec/testdata/nginx")
	if code != 0 || out != "" {
		t.Fatalf("exit %d, stdout %q (stderr %q): want 0 and no findings", code, out, errOut)
	}
	if !strings.Contains(errOut, "valid, 1 objects, 0 errors, 0 warnings") {
		t.Errorf("summary %q", errOut)
	}
}

// validate renders kustomizations (the options every command loads with carry the
// Kustomizer), and loads JSON manifests and List items beside them.
func TestValidateRendersKustomizations(t *testing.T) {
	code, out, errOut := shoal(t, "validate", "../../spec/kustomize/testdata/mixed")
	if code != 0 || out != "" || !strings.Contains(errOut, "valid, 6 objects, 0 errors, 0 warnings") {
		t.Errorf("exit %d, stdout %q, stderr %q: want 6 objects and no findings", code, out, errOut)
	}
}

func TestValidateRealApplicationLoadsWithOnlyWarnings(t *testing.T) {
	code, out, errOut := shoal(t, "validate", "-o", "json", "../../spec/testdata/shop")
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	var report validationReport
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatal(err)
	}
	if !report.Valid || len(report.Errors) != 0 || len(report.Warnings) == 0 || report.Objects < 20 {
		t.Errorf("report: valid=%v errors=%d warnings=%d objects=%d", report.Valid, len(report.Errors), len(report.Warnings), report.Objects)
	}
	for _, w := range report.Warnings {
		if w.File == "" || w.Line == 0 {
			t.Errorf("warning without file and line: %+v", w)
		}
	}
}

func TestValidateReportsErrorsWithFileLineAndPath(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "apps/web.yaml", `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        resources:
          limits:
            memory: 12Xi
`)
	code, out, _ := shoal(t, "validate", dir)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	want := `apps/web.yaml:17: spec.template.spec.containers[0].resources.limits.memory: invalid quantity "12Xi"`
	if !strings.Contains(out, want) {
		t.Errorf("output %q lacks %q", out, want)
	}
	if code, _, errOut := shoal(t, "validate", filepath.Join(dir, "missing")); code != 2 {
		t.Errorf("unreadable directory: exit %d (%s), want 2", code, errOut)
	}
}

// webWithPort is the Deployment "web" with a container port named http.
var webWithPort = testsupport.Deployment{Name: "web", Replicas: 2, Container: "web", Image: "nginx:1.25",
	ContainerYAML: "        ports: [{name: http, containerPort: 8080}]\n"}.YAML()

// serviceYAML is the Service "web" with a selector and a targetPort: line 5 holds
// spec.selector, line 8 spec.ports[0].targetPort.
func serviceYAML(selector, targetPort string) string {
	return "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n" +
		"  selector: {app: " + selector + "}\n  ports:\n  - port: 80\n    targetPort: " + targetPort + "\n"
}

func TestValidateWarnsAboutWhatServicesSelect(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "web.yaml", webWithPort)
	write(t, dir, "svc.yaml", serviceYAML("web", "http"))
	if code, out, errOut := shoal(t, "validate", dir); code != 0 || out != "" || !strings.Contains(errOut, "0 warnings") {
		t.Fatalf("a Service that selects web's http port: exit %d, %q %q; want 0 and no findings", code, out, errOut)
	}

	write(t, dir, "svc.yaml", serviceYAML("web", "htp"))
	code, out, errOut := shoal(t, "validate", dir)
	want := `svc.yaml:8: spec.ports[0].targetPort: warning: targetPort "htp" names no containerPort of the pods this Service selects (web)` + "\n"
	if code != 0 || out != want || !strings.Contains(errOut, "valid, 2 objects, 0 errors, 1 warnings") {
		t.Errorf("a misspelt targetPort: exit %d, stdout %q (stderr %q); want 0 and %q", code, out, errOut, want)
	}

	write(t, dir, "svc.yaml", serviceYAML("wbe", "http"))
	code, out, _ = shoal(t, "validate", "-o", "json", dir)
	var report validationReport
	if err := json.Unmarshal([]byte(out), &report); err != nil || code != 0 {
		t.Fatalf("exit %d, %v: %s", code, err, out)
	}
	if len(report.Warnings) != 1 || report.Warnings[0].File != "svc.yaml" || report.Warnings[0].Line != 5 || report.Warnings[0].Path != "spec.selector" ||
		report.Warnings[0].Message != "selector app=wbe matches no Deployment's pods in namespace default: the Service has no endpoints" {
		t.Errorf("a misspelt selector: warnings %+v", report.Warnings)
	}
}

// TestValidateGroupsRepeatedWarnings: people read one line per feature, tools
// read every warning in -o json.
func TestValidateGroupsRepeatedWarnings(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"a", "b", "c"} {
		write(t, dir, name+".yaml", testsupport.Deployment{Name: name, Replicas: 1, Container: name, Image: "nginx:1.25",
			ContainerYAML: "        stdin: true\n"}.YAML()+"      serviceAccountName: "+name+"\n")
	}
	code, out, _ := shoal(t, "validate", dir)
	for _, want := range []string{
		"serviceAccount: warning: not honoured by Shoal: Shoal gives instances no service account and no Kubernetes API token (×3, first at a.yaml:",
		"spec.template.spec.containers[].stdin: warning: not honoured by Shoal (×3, first at a.yaml:",
	} {
		if code != 0 || !strings.Contains(out, want) || strings.Count(out, "\n") != 2 {
			t.Errorf("validate: exit %d, want 0 and two lines, one with %q:\n%s", code, want, out)
		}
	}
	code, out, _ = shoal(t, "validate", "-o", "json", dir)
	var report validationReport
	if err := json.Unmarshal([]byte(out), &report); err != nil || code != 0 || len(report.Warnings) != 6 {
		t.Errorf("validate -o json: exit %d, %v, %d warnings, want 6: %s", code, err, len(report.Warnings), out)
	}
}

func TestPlanShowsTheWarningsAChangeBrings(t *testing.T) {
	repo := testsupport.NewRepo(t)
	first := repo.Commit("good", map[string]string{"web.yaml": webWithPort, "svc.yaml": serviceYAML("web", "http")})
	repo.Commit("typo", map[string]string{"svc.yaml": serviceYAML("wbe", "http")})
	cache := t.TempDir()
	code, out, errOut := shoal(t, "plan", "--repo", repo.Dir, "--from", first, "--to", "main", "--state-dir", cache)
	want := `svc.yaml:5: spec.selector: warning: selector app=wbe matches no Deployment's pods in namespace default: the Service has no endpoints`
	if code != 1 || !strings.Contains(out, want) {
		t.Errorf("plan: exit %d, want 1 and %q:\n%s%s", code, want, out, errOut)
	}
	// A warning the base already had is not news.
	if code, out, _ := shoal(t, "plan", "--repo", repo.Dir, "--from", "main", "--to", "main", "--state-dir", cache); code != 0 || strings.Contains(out, "warning") {
		t.Errorf("plan of the head against itself: exit %d:\n%s", code, out)
	}
}

func write(t *testing.T, dir, name, text string) {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// deployment is the Deployment "web" of the CLI tests.
func deployment(image string, replicas int) string {
	return testsupport.Deployment{Name: "web", Replicas: replicas, Container: "web", Image: image}.YAML()
}

const secret = `apiVersion: v1
kind: Secret
metadata:
  name: db
stringData:
  password: hunter2-very-secret
`

func TestValidateAndPlanAgainstGitRevisions(t *testing.T) {
	repo := testsupport.NewRepo(t)
	first := repo.Commit("change", map[string]string{"web.yaml": deployment("nginx:1.25", 2), "db.yaml": secret})
	repo.Git("tag", "v1")
	second := repo.Commit("change", map[string]string{
		"web.yaml": deployment("nginx:1.26", 3),
		"db.yaml":  strings.Replace(secret, "hunter2-very-secret", "correct-horse", 1),
		"svc.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n  ports: [{port: 80}]\n",
	})

	cache := t.TempDir()

	if code, out, errOut := shoal(t, "validate", "--repo", repo.Dir, "--rev", "v1", "--state-dir", cache); code != 0 {
		t.Fatalf("validate v1: exit %d: %s %s", code, out, errOut)
	}
	code, out, errOut := shoal(t, "plan", "--repo", repo.Dir, "--from", first, "--to", "main", "--state-dir", cache)
	if code != 1 {
		t.Fatalf("plan: exit %d, want 1 (changes): %s %s", code, out, errOut)
	}
	for _, want := range []string{"nginx:1.25", "nginx:1.26", "replicas", "Service/default/web"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan output lacks %q:\n%s", want, out)
		}
	}
	for _, secretText := range []string{"hunter2", "correct-horse"} {
		if strings.Contains(out, secretText) {
			t.Errorf("plan output shows a secret value %q:\n%s", secretText, out)
		}
	}
	if code, out, _ := shoal(t, "plan", "--repo", repo.Dir, "--from", second, "--to", second, "--state-dir", cache); code != 0 {
		t.Errorf("plan of a revision against itself: exit %d, want 0:\n%s", code, out)
	}

	// A working directory against the branch head: only the edit shows.
	work := t.TempDir()
	write(t, work, "web.yaml", deployment("nginx:1.26", 3))
	write(t, work, "db.yaml", strings.Replace(secret, "hunter2-very-secret", "correct-horse", 1))
	code, out, _ = shoal(t, "plan", work, "--repo", repo.Dir, "--state-dir", cache)
	if code != 1 || !strings.Contains(out, "Service/default/web") || strings.Contains(out, "Deployment/default/web") {
		t.Errorf("plan of a working directory: exit %d:\n%s", code, out)
	}

	// A broken revision: validate says 1 with the file and line; plan refuses with 2.
	repo.Commit("change", map[string]string{"bad.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: Bad_Name}\n"})
	code, out, _ = shoal(t, "validate", "--repo", repo.Dir, "--state-dir", cache)
	if code != 1 || !strings.Contains(out, "bad.yaml:3: metadata.name") {
		t.Errorf("validate broken head: exit %d:\n%s", code, out)
	}
	if code, _, _ := shoal(t, "plan", "--repo", repo.Dir, "--from", second, "--to", "main", "--state-dir", cache); code != 2 {
		t.Errorf("plan to a broken revision: exit %d, want 2", code)
	}
	if code, _, errOut := shoal(t, "validate", "--repo", filepath.Join(repo.Dir, "nope"), "--state-dir", cache); code != 2 || errOut == "" {
		t.Errorf("unreachable repository: exit %d, stderr %q; want 2 and a reason", code, errOut)
	}
}

func TestConfigFileSetsFlagsTheCommandLineLeftUnset(t *testing.T) {
	cmd := newAgentCommand()
	path := filepath.Join(t.TempDir(), "agent.yaml")
	write(t, filepath.Dir(path), "agent.yaml", "node: from-file\nlabel: [zone=a, disk=ssd]\npoll-interval: 5s\n")
	if err := cmd.Flags().Parse([]string{"--node", "from-flag"}); err != nil {
		t.Fatal(err)
	}
	if err := applyConfigFile(cmd.Flags(), path); err != nil {
		t.Fatal(err)
	}
	node, _ := cmd.Flags().GetString("node")
	labels, _ := cmd.Flags().GetStringSlice("label")
	poll, _ := cmd.Flags().GetDuration("poll-interval")
	if node != "from-flag" || strings.Join(labels, ",") != "zone=a,disk=ssd" || poll.String() != "5s" {
		t.Errorf("node=%q labels=%v poll=%v", node, labels, poll)
	}
	write(t, filepath.Dir(path), "agent.yaml", "nodee: typo\n")
	if err := applyConfigFile(newAgentCommand().Flags(), path); err == nil || !strings.Contains(err.Error(), `unknown setting "nodee"`) {
		t.Errorf("typo in config file: %v", err)
	}
}

func TestPlanShowsPlacementOnAClusterFile(t *testing.T) {
	repo := testsupport.NewRepo(t)
	first := repo.Commit("change", map[string]string{"web.yaml": deployment("nginx:1.25", 1)})
	spread := strings.Replace(deployment("nginx:1.26", 3), "    spec:\n", `    spec:
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - labelSelector: {matchLabels: {app: web}}
            topologyKey: kubernetes.io/hostname
`, 1)
	repo.Commit("change", map[string]string{"web.yaml": spread})
	cluster := filepath.Join(t.TempDir(), "cluster.yaml")
	write(t, filepath.Dir(cluster), "cluster.yaml", `nodes:
- {name: a, cpu: "2", memory: 4Gi, labels: {topology.kubernetes.io/zone: z1}}
- {name: b, cpu: "2", memory: 4Gi}
`)
	code, out, errOut := shoal(t, "plan", "--repo", repo.Dir, "--from", first, "--to", "main", "--state-dir", t.TempDir(), "--cluster", cluster)
	if code != 1 {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	for _, want := range []string{"placement on 2 nodes:", "default/web:", "→a", "→b", "unplaced (0/2 nodes are available: 2 node(s) didn't match pod anti-affinity rules.)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// A new Deployment that takes the host port an unchanged one holds on every node: plan
// names the one that loses its place, the port and the holder, and exits 1. Without a pod
// network every container port is a port of the node (a hostPort would need nodes that
// allow it, which a cluster file cannot say).
func TestPlanReportsWorkloadsThatLoseTheirPlace(t *testing.T) {
	redis := func(name string) string {
		return testsupport.Deployment{Name: name, Replicas: 3, Container: "redis", Image: "redis:7",
			ContainerYAML: "        ports: [{containerPort: 6379}]\n"}.YAML()
	}
	repo := testsupport.NewRepo(t)
	first := repo.Commit("cache", map[string]string{"cache.yaml": redis("cache")})
	second := repo.Commit("api", map[string]string{"api.yaml": redis("api")}) // api is placed before cache
	cluster := filepath.Join(t.TempDir(), "cluster.yaml")
	write(t, filepath.Dir(cluster), "cluster.yaml", `nodes:
- {name: a, cpu: "2", memory: 4Gi}
- {name: b, cpu: "2", memory: 4Gi}
- {name: c, cpu: "2", memory: 4Gi}
`)
	args := []string{"plan", "--repo", repo.Dir, "--from", first, "--to", second, "--cluster", cluster, "--pod-network", "off"}
	reason := "0/3 nodes are available: 3 node(s) didn't have free ports for the requested ports (host port 6379/TCP held by default/api)."

	code, out, errOut := shoal(t, args...)
	if code != 1 {
		t.Fatalf("exit %d, want 1: %s%s", code, out, errOut)
	}
	for _, want := range []string{
		"+ Deployment/default/api\n",
		"  default/cache: 0-2→unplaced (" + reason + ")\n", // one run for the three slots
		"\nwould lose placed replicas (placed with the base revision on these nodes, not with the new one):\n" +
			"! Deployment/default/cache would lose 3 of 3 placed replicas: " + reason + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks\n%s\ngot:\n%s", want, out)
		}
	}
	if strings.Contains(out, "~ Deployment/default/cache") {
		t.Errorf("cache is shown as changed; its manifest is not:\n%s", out)
	}

	code, out, errOut = shoal(t, append(args, "-o", "json")...)
	var report planReport
	if err := json.Unmarshal([]byte(out), &report); err != nil || code != 1 {
		t.Fatalf("-o json: exit %d, %v: %s%s", code, err, out, errOut)
	}
	want := []planLost{{objectRef: objectRef{Kind: "Deployment", Namespace: "default", Name: "cache"}, Before: 3, After: 0, Lost: 3, Reason: reason}}
	if !equalJSON(report.LostPlacements, want) || !strings.Contains(out, `"lostPlacements": [`) {
		t.Errorf("lostPlacements %+v, want %+v", report.LostPlacements, want)
	}

	// Nothing lost: an empty list with a cluster, and exit 0 when nothing changes either.
	code, out, _ = shoal(t, "plan", "--repo", repo.Dir, "--from", second, "--to", second, "--cluster", cluster, "--pod-network", "off", "-o", "json")
	if code != 0 || !strings.Contains(out, `"lostPlacements": []`) {
		t.Errorf("no change: exit %d:\n%s", code, out)
	}
	code, out, _ = shoal(t, "plan", "--repo", repo.Dir, "--from", second, "--to", second, "--cluster", cluster, "--pod-network", "off")
	if code != 0 || strings.Contains(out, "would lose") {
		t.Errorf("no change, text: exit %d:\n%s", code, out)
	}
	// Without a cluster, plan cannot know placement and says nothing of it.
	code, out, _ = shoal(t, "plan", "--repo", repo.Dir, "--from", first, "--to", second, "-o", "json")
	if code != 1 || strings.Contains(out, "lostPlacements") {
		t.Errorf("no cluster: exit %d:\n%s", code, out)
	}
}
