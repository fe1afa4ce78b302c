package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoalhq/shoal/internal/testsupport"
)

// shoalIn runs the CLI as its own process in dir (the test binary, see TestMain) and
// returns its exit code, stdout and stderr.
func shoalIn(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), cliEnv+"=1")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("run shoal %v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
}

// appConfig is the ConfigMap app-config with LOG_LEVEL=level.
func appConfig(level string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app-config}\ndata:\n  LOG_LEVEL: " + level + "\n"
}

// dbSecret is the Secret db with the given password.
func dbSecret(password string) string {
	return "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData:\n  password: " + password + "\n"
}

// configApp is a repository with two commits under deploy/: web reads app-config through
// envFrom (3 replicas); worker mounts it as a volume and reads db's password (2 replicas);
// batch uses neither. The second commit changes app-config and db only.
func configApp(t *testing.T) (repo *testsupport.Repo, first, second string) {
	t.Helper()
	web := testsupport.Deployment{Name: "web", Replicas: 3, Container: "web", Image: "nginx:1.25",
		ContainerYAML: "        envFrom: [{configMapRef: {name: app-config}}]\n"}.YAML()
	worker := testsupport.Deployment{Name: "worker", Replicas: 2, Container: "worker", Image: "busybox:1.36",
		ContainerYAML: "        env: [{name: PASSWORD, valueFrom: {secretKeyRef: {name: db, key: password}}}]\n" +
			"        volumeMounts: [{name: config, mountPath: /etc/app}]\n"}.YAML()
	worker = strings.Replace(worker, "    spec:\n", "    spec:\n      volumes: [{name: config, configMap: {name: app-config}}]\n", 1)
	batch := testsupport.Deployment{Name: "batch", Replicas: 1, Container: "batch", Image: "busybox:1.36"}.YAML()
	repo = testsupport.NewRepo(t)
	first = repo.Commit("first", map[string]string{
		"deploy/web.yaml": web, "deploy/worker.yaml": worker, "deploy/batch.yaml": batch,
		"deploy/config.yaml": appConfig("info"), "deploy/db.yaml": dbSecret("hunter2-old-password"),
	})
	second = repo.Commit("second", map[string]string{
		"deploy/config.yaml": appConfig("debug"), "deploy/db.yaml": dbSecret("hunter2-new-password"),
	})
	return repo, first, second
}

func TestRepoDotAndRelativePaths(t *testing.T) {
	repo, first, second := configApp(t)
	deploy := filepath.Join(repo.Dir, "deploy")
	state := t.TempDir()

	// The top of the work tree, with --path.
	code, out, errOut := shoalIn(t, repo.Dir, "validate", "--repo", ".", "--path", "deploy", "--rev", "HEAD~1", "--state-dir", state)
	if code != 0 || !strings.Contains(errOut, "HEAD~1 ("+short(first)+"): valid, 5 objects") {
		t.Errorf("validate --repo . --rev HEAD~1: exit %d, %q %q", code, out, errOut)
	}
	// A directory inside the work tree: the repository is the enclosing one and the
	// manifests are that directory's, as git ls-tree in it would list them.
	code, out, errOut = shoalIn(t, deploy, "plan", "--repo", ".", "--from", "HEAD~1", "--to", "HEAD", "--state-dir", state)
	if code != 1 || !strings.Contains(out, "plan: HEAD~1 ("+short(first)+") → HEAD ("+short(second)+")") || !strings.Contains(out, "~ ConfigMap/default/app-config") {
		t.Errorf("plan --repo . in deploy/: exit %d:\n%s%s", code, out, errOut)
	}
	// A relative path from outside, and a file:// URL with --path.
	for _, args := range [][]string{
		{"--repo", "./" + filepath.Base(repo.Dir), "--path", "deploy"},
		{"--repo", "file://" + repo.Dir, "--path", "deploy"},
	} {
		code, out, errOut := shoalIn(t, filepath.Dir(repo.Dir), append([]string{"plan", "--from", first[:7], "--to", "main", "--state-dir", state}, args...)...)
		if code != 1 || !strings.Contains(out, "~ ConfigMap/default/app-config") {
			t.Errorf("plan %v: exit %d:\n%s%s", args, code, out, errOut)
		}
	}
	// The working directory against HEAD: an uncommitted edit shows.
	write(t, deploy, "config.yaml", appConfig("trace"))
	code, out, _ = shoalIn(t, deploy, "plan", ".", "--repo", ".", "--state-dir", state)
	if code != 1 || !strings.Contains(out, `data.LOG_LEVEL: "debug" -> "trace"`) {
		t.Errorf("plan . --repo .: exit %d:\n%s", code, out)
	}
	// A revision that names nothing.
	code, _, errOut = shoalIn(t, deploy, "plan", "--repo", ".", "--from", "HEAD~1", "--to", "nope", "--state-dir", state)
	want := `revision "nope" not found in ` + repo.Dir + `: give a branch, tag, or commit (as git rev-parse accepts)`
	if code != 2 || !strings.Contains(errOut, want) {
		t.Errorf("bad revision: exit %d, stderr %q; want 2 and %q", code, errOut, want)
	}
	// A local repository is read where it is: nothing is cloned.
	if entries, err := os.ReadDir(state); err != nil || len(entries) != 0 {
		t.Errorf("state directory after local reads: %v %v; want it empty", entries, err)
	}
}

func TestAgentRepoFlagMakesLocalPathsAbsolute(t *testing.T) {
	repo, _, _ := configApp(t)
	t.Chdir(filepath.Join(repo.Dir, "deploy"))
	for _, tc := range []struct{ url, path, wantPath string }{
		{".", "", "deploy"},
		{"..", "deploy", "deploy"},
		{".", "prod", "deploy/prod"},
		{"file://" + repo.Dir, "", ""},
	} {
		f := repoFlags{url: tc.url, path: tc.path}
		src := f.source()
		wantURL := repo.Dir
		if strings.HasPrefix(tc.url, "file://") {
			wantURL = tc.url // the top of a work tree already: kept as given
		}
		if src.URL != wantURL || src.Path != tc.wantPath {
			t.Errorf("--repo %s --path %q: URL %q, Path %q; want %q, %q", tc.url, tc.path, src.URL, src.Path, wantURL, tc.wantPath)
		}
		if err := src.Validate(); err != nil {
			t.Errorf("--repo %s: %v", tc.url, err)
		}
	}
	// Not a repository (yet): absolute, and the source says what is wrong with it later.
	if src := (&repoFlags{url: "missing"}).source(); src.URL != filepath.Join(repo.Dir, "deploy", "missing") {
		t.Errorf("missing directory: URL %q", src.URL)
	}
}

func TestPlanShowsWhatAConfigChangeReplaces(t *testing.T) {
	repo, first, second := configApp(t)
	args := []string{"plan", "--repo", repo.Dir, "--path", "deploy", "--from", first, "--to", second}

	code, out, errOut := shoal(t, args...)
	if code != 1 {
		t.Fatalf("exit %d, want 1: %s%s", code, out, errOut)
	}
	for _, want := range []string{
		"~ ConfigMap/default/app-config\n" +
			"    data.LOG_LEVEL: \"info\" -> \"debug\"\n" +
			"    → replaces Deployment/default/web (3 instances), Deployment/default/worker (2 instances)\n",
		"~ Deployment/default/web (config: ConfigMap/app-config)\n",
		"~ Deployment/default/worker (config: ConfigMap/app-config, Secret/db)\n",
		"~ Secret/default/db\n" +
			"    data.password: (secret, 20 bytes) -> (secret, 20 bytes, changed)\n" +
			"    → replaces Deployment/default/worker (2 instances)\n",
		"0 to create, 4 to update, 0 to delete.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks\n%s\ngot:\n%s", want, out)
		}
	}
	if strings.Contains(out, "batch") || strings.Contains(out, "hunter2") {
		t.Errorf("output names batch (unchanged) or a secret value:\n%s", out)
	}

	code, out, errOut = shoal(t, append(args, "-o", "json")...)
	if code != 1 {
		t.Fatalf("-o json: exit %d, want 1: %s%s", code, out, errOut)
	}
	if strings.Contains(out, "hunter2") {
		t.Errorf("the JSON shows a secret value:\n%s", out)
	}
	var report planReport
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if report.From.Revision == nil || report.From.Revision.Commit != first || report.To.Revision.Commit != second {
		t.Errorf("from %+v, to %+v", report.From, report.To)
	}
	if report.Summary != (planSummary{Update: 4}) || len(report.Changes) != 4 {
		t.Fatalf("summary %+v, %d changes", report.Summary, len(report.Changes))
	}
	cm, worker := report.Changes[0], report.Changes[2]
	wantReplaces := []planReplacement{
		{objectRef: objectRef{Kind: "Deployment", Namespace: "default", Name: "web"}, Instances: 3},
		{objectRef: objectRef{Kind: "Deployment", Namespace: "default", Name: "worker"}, Instances: 2},
	}
	if cm.Kind != "ConfigMap" || cm.Name != "app-config" || len(cm.Fields) != 1 || !equalJSON(cm.Replaces, wantReplaces) {
		t.Errorf("app-config change: %+v", cm)
	}
	wantConfig := []objectRef{{Kind: "ConfigMap", Namespace: "default", Name: "app-config"}, {Kind: "Secret", Namespace: "default", Name: "db"}}
	if worker.Name != "worker" || worker.Action != "update" || len(worker.Fields) != 0 || worker.Instances != 2 || !equalJSON(worker.Config, wantConfig) {
		t.Errorf("worker change: %+v", worker)
	}
	// The field names tools rely on.
	for _, key := range []string{`"action": "update"`, `"kind": "Deployment"`, `"instances": 2`, `"config": [`, `"replaces": [`, `"summary": {`, `"warnings": []`} {
		if !strings.Contains(out, key) {
			t.Errorf("JSON lacks %s:\n%s", key, out)
		}
	}
}

func TestPlanJSONOfAnInvalidRevision(t *testing.T) {
	repo, _, second := configApp(t)
	repo.Commit("broken", map[string]string{"deploy/bad.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: Bad_Name}\n"})
	code, out, _ := shoal(t, "plan", "--repo", repo.Dir, "--path", "deploy", "--from", second, "--to", "HEAD", "-o", "json")
	var report planReport
	if err := json.Unmarshal([]byte(out), &report); err != nil || code != 2 {
		t.Fatalf("exit %d, %v:\n%s", code, err, out)
	}
	found := false
	for _, d := range report.Errors {
		found = found || d.File == "bad.yaml" && d.Line == 3 && d.Path == "metadata.name"
	}
	if !found || len(report.Changes) != 0 || report.To.Revision == nil || report.To.Revision.Commit != repo.Git("rev-parse", "HEAD") {
		t.Errorf("report of an invalid revision: %+v", report)
	}
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func TestRemoteRevisionsAreRefsOnly(t *testing.T) {
	// Refused before any network use: the address is never dialled.
	code, _, errOut := shoal(t, "plan", "--repo", "https://127.0.0.1:1/app.git", "--from", "HEAD~1", "--to", "main", "--state-dir", t.TempDir())
	want := `revision "HEAD~1": a remote repository is asked for branches, tags and full commit SHAs only; for HEAD~1, give --repo a local clone (a path)`
	if code != 2 || !strings.Contains(errOut, want) {
		t.Errorf("exit %d, stderr %q; want 2 and %q", code, errOut, want)
	}
}
