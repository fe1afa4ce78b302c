package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoalhq/shoal/agent"
	"github.com/shoalhq/shoal/internal/testsupport"
)

// TestDeployUpdateRevertBadCommit drives one agent through a workload's life by Git alone:
// deploy, update, revert, a bad commit, delete.
func TestDeployUpdateRevertBadCommit(t *testing.T) {
	repo := testsupport.NewRepo(t)
	port := testsupport.FreePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	repo.Commit("v1", map[string]string{"web.yaml": helloDeployment("web", "v1", 1, port, "")})
	a := startAgent(t, repo, "e2e-lifecycle")

	serving := func(version string) func(*agent.Status) bool {
		return func(*agent.Status) bool { return strings.Contains(get(url), "version "+version) }
	}
	a.waitFor("v1 answering HTTP", serving("v1"))
	first := a.waitFor("converged", func(st *agent.Status) bool { return st.Converged })
	v1ID := workload(first, "web").Instances[0].ID

	v2 := repo.Commit("v2", map[string]string{"web.yaml": helloDeployment("web", "v2", 1, port, "")})
	a.webhook()
	a.waitFor("v2 answering HTTP", serving("v2"))
	st := a.waitFor("v2 converged", func(st *agent.Status) bool { return st.Converged && st.Applied.Commit == v2 })
	if w := workload(st, "web"); len(w.Instances) != 1 || w.Instances[0].ID == v1ID {
		t.Fatalf("after the update want one new instance, have %+v", w.Instances)
	}

	repo.Git("revert", "--no-edit", "HEAD")
	a.webhook()
	a.waitFor("v1 answering again after git revert", serving("v1"))

	good := repo.Git("rev-parse", "HEAD")
	repo.Commit("broken", map[string]string{"broken.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: [oops\n"})
	a.webhook()
	st = a.waitFor("the bad commit reported", func(st *agent.Status) bool { return st.Sync.Rejected != nil })
	if st.Desired.Commit != good {
		t.Errorf("desired %s, want the last good %s", st.Desired.Commit, good)
	}
	if d := st.Sync.Diagnostics; len(d) == 0 || d[0].File != "broken.yaml" || d[0].Line == 0 {
		t.Errorf("want a diagnostic naming broken.yaml and a line, have %+v", d)
	}
	if !serving("v1")(nil) {
		t.Error("the running version stopped serving after a bad commit")
	}
	out, err := a.cli("status").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "broken.yaml:4") || !strings.Contains(string(out), "default/web") {
		t.Errorf("shoal status does not show the rejected file and line (err %v):\n%s", err, out)
	}
	out, err = a.cli("logs", "web").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "/hello] hello: listening on 127.0.0.1:") {
		t.Errorf("shoal logs (err %v):\n%s", err, out)
	}
	// Without the token a neighbour on the node's network gets nothing.
	for _, path := range []string{"/logs?workload=web", "/status"} {
		if resp, err := http.Get("http://" + a.addr + path); err != nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without the token: %v %v, want 401", path, resp, err)
		} else {
			resp.Body.Close()
		}
	}
	repo.Commit("fixed", map[string]string{"broken.yaml": "", "web.yaml": helloDeployment("web", "v2", 1, port, "")})
	a.webhook()
	a.waitFor("the next good commit applied", serving("v2"))
	a.waitFor("the error cleared", func(st *agent.Status) bool { return st.Sync.Error == "" && st.Sync.Rejected == nil })

	repo.Commit("delete", map[string]string{"web.yaml": ""})
	a.webhook()
	a.waitFor("web removed", func(st *agent.Status) bool { return workload(st, "web") == nil && st.Converged })
	if body := get(url); body != "" {
		t.Errorf("removed workload still answers: %q", body)
	}
}

// TestScaleAndHostPorts scales a workload without ports, and shows that a second replica
// needing the same host port on the one node is reported unplaceable with the reason.
func TestScaleAndHostPorts(t *testing.T) {
	repo := testsupport.NewRepo(t)
	port := testsupport.FreePort(t)
	workers := func(n int) string {
		return strings.Replace(helloDeployment("workers", "v1", n, 0, ""), "        ports:\n        - containerPort: 0\n", "", 1)
	}
	workersOff := strings.Replace(workers(3), `value: "127.0.0.1:0"`, `value: "off"`, 1)
	repo.Commit("workers", map[string]string{
		"workers.yaml": workersOff,
		"web.yaml":     helloDeployment("web", "v1", 2, port, ""),
	})
	a := startAgent(t, repo, "e2e-scale")
	st := a.waitFor("3 workers ready, web 1 ready and 1 unplaced", func(st *agent.Status) bool {
		w, web := workload(st, "workers"), workload(st, "web")
		return w != nil && w.Ready == 3 && web != nil && web.Ready == 1 && len(web.Unplaced) == 1
	})
	if reason := workload(st, "web").Unplaced[0].Reason; !strings.Contains(reason, "port") {
		t.Errorf("unplaced reason %q does not name the host port", reason)
	}
	repo.Commit("scale down", map[string]string{
		"workers.yaml": strings.Replace(workersOff, "replicas: 3", "replicas: 1", 1),
	})
	a.webhook()
	a.waitFor("1 worker", func(st *agent.Status) bool {
		w := workload(st, "workers")
		return w != nil && w.Ready == 1 && len(w.Instances) == 1
	})
}

// TestAdoptionAndSelfHealing kills the agent with SIGKILL (its containers keep serving and a
// new agent adopts them with the same PIDs), then kills a container by hand (restored).
func TestAdoptionAndSelfHealing(t *testing.T) {
	repo := testsupport.NewRepo(t)
	port := testsupport.FreePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	repo.Commit("v1", map[string]string{"web.yaml": helloDeployment("web", "v1", 1, port, "")})
	a := startAgent(t, repo, "e2e-adopt")
	st := a.waitFor("running with a PID", func(st *agent.Status) bool {
		w := workload(st, "web")
		return st.Converged && w != nil && len(w.Instances) == 1 && w.Instances[0].Containers[0].PID != 0
	})
	before := workload(st, "web").Instances[0]
	// Ready without a probe means running, not yet listening: wait until it answers.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(get(url), "version v1"); {
		if time.Now().After(deadline) {
			t.Fatal("the container never answered")
		}
		time.Sleep(50 * time.Millisecond)
	}

	a.kill(syscall.SIGKILL)
	if !strings.Contains(get(url), "version v1") {
		t.Fatal("the container stopped serving when the agent was killed")
	}
	a.start()
	st = a.waitFor("adopted", func(st *agent.Status) bool {
		w := workload(st, "web")
		return st.Converged && w != nil && len(w.Instances) == 1 && w.Instances[0].Containers[0].PID != 0
	})
	after := workload(st, "web").Instances[0]
	if after.ID != before.ID || after.Containers[0].PID != before.Containers[0].PID || after.Restarts != 0 {
		t.Fatalf("not adopted as it ran: before %+v, after %+v", before, after)
	}

	killed := time.Now()
	if err := syscall.Kill(int(after.Containers[0].PID), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	st = a.waitFor("restored after a kill by hand", func(st *agent.Status) bool {
		w := workload(st, "web")
		return w != nil && len(w.Instances) == 1 && w.Instances[0].Restarts == 1 && strings.Contains(get(url), "version v1")
	})
	t.Logf("killed container answering again after %v", time.Since(killed).Round(time.Millisecond))
	if got := workload(st, "web").Instances[0].LastExit; got != "Error (exit 137)" {
		t.Errorf("last exit %q, want Error (exit 137): a plain SIGKILL is not an OOM kill", got)
	}
}

// TestCrashBackoffAndOOM shows a crash loop slowing down and an OOM kill named as such.
func TestCrashBackoffAndOOM(t *testing.T) {
	repo := testsupport.NewRepo(t)
	crash := "        - {name: EXIT_AFTER, value: 50ms}\n        - {name: EXIT_CODE, value: \"3\"}\n"
	oom := strings.Replace(helloDeployment("oom", "v1", 1, testsupport.FreePort(t), "        - {name: ALLOC_MB, value: \"128\"}\n"),
		"        ports:\n", "        resources:\n          limits: {memory: 32Mi}\n        ports:\n", 1)
	repo.Commit("misbehave", map[string]string{
		"crash.yaml": helloDeployment("crash", "v1", 1, testsupport.FreePort(t), crash),
		"oom.yaml":   oom,
	})
	a := startAgent(t, repo, "e2e-crash")

	// With --crash-backoff 1s the restarts come at about 0s, 1s, 2s, 4s after each crash.
	var seen []time.Time
	last := -1
	a.waitFor("4 restarts of the crashing container", func(st *agent.Status) bool {
		w := workload(st, "crash")
		if w == nil || len(w.Instances) != 1 {
			return false
		}
		if r := w.Instances[0].Restarts; r != last {
			last = r
			seen = append(seen, time.Now())
		}
		return last >= 4
	})
	if n := len(seen); n >= 4 {
		early, late := seen[n-3].Sub(seen[n-4]), seen[n-1].Sub(seen[n-2])
		if late <= early {
			t.Errorf("restart delays do not grow: %v then %v", early, late)
		}
	}
	st := a.waitFor("the OOM kill reported", func(st *agent.Status) bool {
		w := workload(st, "oom")
		return w != nil && len(w.Instances) == 1 && strings.HasPrefix(w.Instances[0].LastExit, "OOMKilled")
	})
	if got := workload(st, "crash").Instances[0].LastExit; got != "Error (exit 3)" {
		t.Errorf("crash last exit %q, want Error (exit 3)", got)
	}
}

// TestConfigAndSecretsReachTheContainer checks env from a ConfigMap and a Secret, and both
// mounted as files, the Secret on a tmpfs with mode 0400; then a ConfigMap edit rolls the
// instance and the new value is served.
func TestConfigAndSecretsReachTheContainer(t *testing.T) {
	repo := testsupport.NewRepo(t)
	port := testsupport.FreePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	withConfig := strings.Replace(helloDeployment("web", "v1", 1, port,
		"        - name: GREETING\n          valueFrom: {configMapKeyRef: {name: web-config, key: greeting}}\n"+
			"        - name: DB_PASSWORD\n          valueFrom: {secretKeyRef: {name: web-secret, key: password}}\n"),
		"        ports:\n",
		"        volumeMounts:\n        - {name: config, mountPath: /etc/web}\n        - {name: secret, mountPath: /etc/secret}\n        ports:\n", 1)
	withConfig += "      volumes:\n      - name: config\n        configMap: {name: web-config}\n      - name: secret\n        secret: {secretName: web-secret}\n"
	config := func(greeting string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web-config}\ndata:\n  greeting: " + greeting + "\n"
	}
	secret := "apiVersion: v1\nkind: Secret\nmetadata: {name: web-secret}\nstringData:\n  password: s3cr3t-value\n"
	repo.Commit("config", map[string]string{"web.yaml": withConfig, "config.yaml": config("hi"), "secret.yaml": secret})
	a := startAgent(t, repo, "e2e-config")
	a.waitFor("serving", func(*agent.Status) bool { return get(base+"/env/GREETING") == "hi" })
	for path, want := range map[string]string{
		"/env/DB_PASSWORD":                "s3cr3t-value",
		"/file?path=/etc/web/greeting":    "hi",
		"/file?path=/etc/secret/password": "s3cr3t-value",
	} {
		if got := get(base + path); got != want {
			t.Errorf("%s = %q, want %q", path, got, want)
		}
	}
	// The PID reaches status with the runtime listing that follows a start, which may
	// come after the container already serves.
	st := a.waitFor("the container's PID in status", func(st *agent.Status) bool {
		w := workload(st, "web")
		return w != nil && len(w.Instances) > 0 && len(w.Instances[0].Containers) > 0 && w.Instances[0].Containers[0].PID != 0
	})
	pid := workload(st, "web").Instances[0].Containers[0].PID
	mounts := readFile(t, fmt.Sprintf("/proc/%d/mountinfo", pid))
	if !strings.Contains(mounts, " /etc/secret ") || !strings.Contains(lineWith(mounts, " /etc/secret "), "tmpfs") {
		t.Errorf("the secret volume is not a tmpfs in the container:\n%s", lineWith(mounts, " /etc/secret "))
	}
	if strings.Contains(a.log.String(), "s3cr3t-value") {
		t.Error("the agent logged a secret value")
	}

	repo.Commit("new greeting", map[string]string{"config.yaml": config("hello-again")})
	a.webhook()
	a.waitFor("a ConfigMap edit rolled the instance", func(*agent.Status) bool { return get(base+"/env/GREETING") == "hello-again" })
}

// TestUnwantedAndForeignContainers shows that a Shoal-labelled instance the plan no longer
// wants is removed when found after a restart, while a container without Shoal's labels in
// the same namespace is never touched.
func TestUnwantedAndForeignContainers(t *testing.T) {
	repo := testsupport.NewRepo(t)
	port := testsupport.FreePort(t)
	repo.Commit("two", map[string]string{
		"web.yaml":  helloDeployment("web", "v1", 1, port, ""),
		"gone.yaml": idleDeployment("gone", 1),
	})
	a := startAgent(t, repo, "e2e-foreign")
	a.waitFor("both ready", func(st *agent.Status) bool {
		return st.Converged && workload(st, "web") != nil && workload(st, "gone") != nil
	})
	ctr := func(args ...string) string {
		out, err := exec.Command("ctr", append([]string{"-a", daemon.Socket, "-n", "e2e-foreign"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("ctr %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	ctr("images", "pull", "--plain-http", registry+"/hello:v1")
	ctr("run", "-d", "--env", "LISTEN=off", registry+"/hello:v1", "foreign")

	a.kill(syscall.SIGKILL)
	repo.Commit("drop gone", map[string]string{"gone.yaml": ""})
	a.start()
	a.waitFor("gone removed after the restart", func(st *agent.Status) bool {
		return st.Converged && workload(st, "gone") == nil && workload(st, "web") != nil
	})
	if !strings.Contains(ctr("tasks", "ls"), "foreign") {
		t.Error("a container without Shoal's labels was touched")
	}
	ctr("tasks", "kill", "-s", "SIGKILL", "foreign")
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func lineWith(text, part string) string {
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, part) {
			return line
		}
	}
	return ""
}
