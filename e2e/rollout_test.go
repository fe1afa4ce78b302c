package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shoalhq/shoal/agent"
	"github.com/shoalhq/shoal/internal/testsupport"
	"github.com/shoalhq/shoal/notify"
)

// reportSecret signs the test cluster's commit status webhooks.
const reportSecret = "e2e-report-secret"

// delivery is one commit status webhook a receiver took.
type delivery struct {
	node    string // the node whose loopback it came in on
	id      string
	at      time.Time
	payload struct {
		Commit      string `json:"commit"`
		State       string `json:"state"`
		Description string `json:"description"`
		Node        string `json:"node"`
	}
}

// receivers take the commit status webhooks of every node: one HTTP server on each node's
// loopback (127.0.0.1:9999 in its network namespace), so that no test traffic leaves the
// namespaces the test made.
type receivers struct {
	t          testing.TB
	mu         sync.Mutex
	deliveries []delivery
	bad        []string
}

// listenIn opens a TCP listener inside the network namespace at nsPath.
func listenIn(nsPath, addr string) (net.Listener, error) {
	type result struct {
		l   net.Listener
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		target, err := os.Open(nsPath)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- result{err: err}
			return
		}
		l, err := net.Listen("tcp", addr)
		done <- result{l, err}
	}()
	r := <-done
	return r.l, r.err
}

func startReceivers(t testing.TB, c *cluster) *receivers {
	r := &receivers{t: t}
	for i, ns := range c.net.nodes {
		node := fmt.Sprintf("node%d", i+1)
		l, err := listenIn(c.net.nsPath(ns), "127.0.0.1:9999")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
			var d delivery
			d.node, d.id, d.at = node, req.Header.Get(notify.HeaderDelivery), time.Now()
			r.mu.Lock()
			defer r.mu.Unlock()
			if !notify.VerifySignature([]byte(reportSecret), body, req.Header.Get(notify.HeaderSignature)) {
				r.bad = append(r.bad, "bad signature from "+node)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			if err := json.Unmarshal(body, &d.payload); err != nil {
				r.bad = append(r.bad, "bad body from "+node+": "+err.Error())
			}
			r.deliveries = append(r.deliveries, d)
			w.WriteHeader(http.StatusNoContent)
		})}
		go srv.Serve(l)
		t.Cleanup(func() { srv.Close() })
	}
	return r
}

// states lists the states delivered for commit, in order.
func (r *receivers) states(commit string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, d := range r.deliveries {
		if d.payload.Commit == commit {
			out = append(out, d.payload.State)
		}
	}
	return out
}

// dump lists the deliveries of commit: state, node, time.
func (r *receivers) dump(commit string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, d := range r.deliveries {
		if d.payload.Commit == commit {
			fmt.Fprintf(&b, "[%s from %s at %s] ", d.payload.State, d.node, d.at.Format("15:04:05.000"))
		}
	}
	return b.String()
}

// newReportingCluster runs three nodes with a pod network, a short crash backoff and a
// commit status webhook on each node's loopback, and returns them with the receivers.
func newReportingCluster(t testing.TB) (*cluster, *receivers) {
	repo := testsupport.NewRepo(t)
	repo.Commit("nothing yet", map[string]string{"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: empty}\n"})
	flags := map[int][]string{}
	for i := 1; i <= 3; i++ {
		flags[i] = []string{"--pod-network", "on", "--route-mode", "vxlan", "--crash-backoff", "1s",
			"--report-webhook", "http://127.0.0.1:9999/hook"}
	}
	c := newClusterWithEnv(t, repo, flags, []string{"SHOAL_REPORT_WEBHOOK_SECRET=" + reportSecret}, 1, 2, 3)
	recv := startReceivers(t, c)
	c.waitForSubnets(3)
	return c, recv
}

// webDeployment is web: three replicas behind a readiness probe, rolled one at a time
// without ever going below three ready (maxUnavailable 0); extra adds container lines.
func webDeployment(version, extra string) string {
	d := testsupport.Deployment{
		Name: "web", Replicas: 3, Container: "hello", Image: registry + "/hello:" + version, GracePeriod: 2,
		ContainerYAML: "        env:\n        - {name: LISTEN, value: \":8080\"}\n" + extra +
			"        ports:\n        - {name: http, containerPort: 8080}\n" +
			"        readinessProbe: {httpGet: {path: /readyz, port: http}, periodSeconds: 1, failureThreshold: 1}\n",
	}.YAML()
	return strings.Replace(d, "  replicas: 3\n", "  replicas: 3\n  progressDeadlineSeconds: 12\n"+
		"  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}\n", 1)
}

// exitsAtStart makes hello exit with status 1 before it serves anything: it cannot listen
// on port 99999. (An application that passes its readiness probe and then crashes is
// counted ready for that moment, by Shoal as by Kubernetes: minReadySeconds is for that.)
func exitsAtStart(manifest string) string {
	return strings.Replace(manifest, `value: ":8080"`, `value: ":99999"`, 1)
}

const webService = `apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports:
  - {port: 80, targetPort: http}
`

// rolloutFiles is the application at one commit: web and api.
func rolloutFiles(web, apiVersion string) map[string]string {
	return map[string]string{
		"web.yaml": web, "web-svc.yaml": webService,
		"api.yaml": testsupport.Deployment{Name: "api", Replicas: 1, Container: "hello", Image: registry + "/hello:" + apiVersion, GracePeriod: 2}.YAML(),
	}
}

// fate is a commit's fate as agent i says it; nil while it has not fetched it.
func (c *cluster) fate(i int, commit string) *agent.CommitStatus {
	resp := c.agents[i].get("/rollouts?commit=" + commit)
	if resp == nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	var cs agent.CommitStatus
	if json.NewDecoder(resp.Body).Decode(&cs) != nil {
		return nil
	}
	return &cs
}

// waitFate waits until every alive agent says commit has state.
func (c *cluster) waitFate(commit, state string, nodes ...int) *agent.CommitStatus {
	c.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		var last *agent.CommitStatus
		all := true
		for _, i := range nodes {
			cs := c.fate(i, commit)
			if cs == nil || cs.State != state {
				all = false
			}
			if cs != nil {
				last = cs
			}
		}
		if all {
			return last
		}
		if time.Now().After(deadline) {
			out, _ := json.MarshalIndent(last, "", "  ")
			var where strings.Builder
			for _, i := range nodes {
				if st := c.agents[i].status(); st != nil {
					for _, w := range st.Workloads {
						for _, in := range w.Instances {
							fmt.Fprintf(&where, "node%d sees %s on %s: %s %s %s %s\n", i, in.ID, in.Node, in.Phase, in.SpecHash, in.LastExit, in.Message)
						}
					}
				}
			}
			c.t.Fatalf("commit %s is not %s on nodes %v after 90 s; last:\n%s\n%s", commit[:12], state, nodes, out, where.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// push commits files and tells every alive agent, as a Git host's webhook would.
func (c *cluster) push(msg string, files map[string]string, nodes ...int) string {
	c.t.Helper()
	commit := c.repo.Commit(msg, files)
	for _, i := range nodes {
		c.agents[i].webhook()
	}
	return commit
}

// webOn reports whether agent i sees web as three ready instances of spec hash and
// nothing else.
func webOn(st *agent.Status, hash string) bool {
	w := workload(st, "web")
	if w == nil || len(w.Instances) != 3 {
		return false
	}
	for _, in := range w.Instances {
		if in.SpecHash != hash || in.Phase != agent.PhaseReady {
			return false
		}
	}
	return true
}

// rolloutStatus runs `shoal rollout status` against agent i and returns its exit code and output.
func (c *cluster) rolloutStatus(i int, args ...string) (int, string) {
	cmd := c.agents[i].cli(append([]string{"rollout", "status"}, args...)...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	}
	c.t.Fatalf("shoal rollout status: %v\n%s", err, out)
	return -1, ""
}

// TestRolloutRevertsItself runs three nodes with a pod network: a commit whose image exits
// at start is reverted while a client loop through the Service sees no failed request; one
// whose readiness never passes is reverted at its progress deadline; a commit that changes
// only another Deployment leaves the reverted one alone; the next good commit rolls out;
// an agent killed with -9 during a rollout leaves one verdict and no stuck rollout. Every
// transition is reported once, by one node, to a signed webhook, and `shoal rollout
// status` exits 0, 1 or 2 as it should.
func TestRolloutRevertsItself(t *testing.T) {
	c, recv := newReportingCluster(t)

	good := c.push("web and api", rolloutFiles(webDeployment("v1", ""), "v1"), 1, 2, 3)
	cs := c.waitFate(good, agent.CommitSucceeded, 1, 2, 3)
	goodHash := cs.Workloads[slices.IndexFunc(cs.Workloads, func(w agent.WorkloadRollout) bool { return w.Name == "web" })].SpecHash
	c.waitForRoutes(c.agents[1].status())
	if code, out := c.rolloutStatus(1, "--commit", good); code != 0 {
		t.Fatalf("rollout status of the good commit: exit %d\n%s", code, out)
	}

	// A client loop through the Service's virtual IP, from node3, while rollouts fail.
	vip := lookupA(t, c.net.addr(3)+":53", "web.default.svc.cluster.local.")
	stop := make(chan struct{})
	errs := make(chan error, 1)
	requests := 0
	go func() {
		defer close(errs)
		for ; ; requests++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := getIn(c.net.nodes[2], "http://"+vip+"/"); err != nil {
				errs <- fmt.Errorf("request %d: %w", requests, err)
				return
			}
		}
	}()
	checkClient := func(when string) {
		t.Helper()
		select {
		case err := <-errs:
			t.Fatalf("%s: the client loop failed: %v", when, err)
		default:
		}
	}

	// 1. An image that exits at start: reverted by the crash rule.
	crash := c.push("web v2 exits at start", rolloutFiles(exitsAtStart(webDeployment("v2", "")), "v1"), 1, 2, 3)
	code, out := c.rolloutStatus(2, "--commit", crash, "--timeout", "90s")
	if code != 1 || !strings.Contains(out, "restarts of web-") {
		t.Fatalf("rollout status of the crashing commit: exit %d, want 1 with the restarts\n%s", code, out)
	}
	cs = c.waitFate(crash, agent.CommitFailed, 1, 2, 3)
	if !strings.Contains(cs.Reason, "reverted to "+goodHash) {
		t.Errorf("crashing commit's reason %q does not say it was reverted to %s", cs.Reason, goodHash)
	}
	for i := 1; i <= 3; i++ {
		c.agents[i].waitFor("web back on v1 everywhere", func(st *agent.Status) bool { return webOn(st, goodHash) })
	}
	checkClient("after the crashing commit")

	// 2. A readiness probe that never passes: reverted at the progress deadline (12 s).
	unready := c.push("web v2 never ready", rolloutFiles(strings.Replace(webDeployment("v2", ""), "path: /readyz", "path: /env/NEVER_SET", 1), "v1"), 1, 2, 3)
	cs = c.waitFate(unready, agent.CommitFailed, 1, 2, 3)
	if !strings.Contains(cs.Reason, "progress deadline 12s exceeded: 0/3 ready") {
		t.Errorf("never-ready commit's reason = %q, want the progress deadline", cs.Reason)
	}
	for i := 1; i <= 3; i++ {
		c.agents[i].waitFor("web back on v1 everywhere", func(st *agent.Status) bool { return webOn(st, goodHash) })
	}
	checkClient("after the never-ready commit")
	if code, _ := c.rolloutStatus(3, "--commit", unready); code != 1 {
		t.Errorf("rollout status of the never-ready commit: exit %d, want 1", code)
	}

	// 3. A commit that changes only api: api rolls, web stays on v1 (its failed spec is held back).
	apiOnly := c.push("api v2", rolloutFiles(strings.Replace(webDeployment("v2", ""), "path: /readyz", "path: /env/NEVER_SET", 1), "v2"), 1, 2, 3)
	cs = c.waitFate(apiOnly, agent.CommitSucceeded, 1, 2, 3)
	for _, w := range cs.Workloads {
		if want := map[string]string{"api": agent.WorkloadSucceeded, "web": agent.WorkloadReverted}[w.Name]; w.State != want {
			t.Errorf("in the api-only commit %s is %s, want %s", w.Name, w.State, want)
		}
	}
	if !webOn(c.agents[1].status(), goodHash) {
		t.Errorf("web left v1 on a commit that did not change it")
	}

	close(stop)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	t.Logf("%d requests through the Service, none failed, across two reverted rollouts and a commit beside them", requests)

	// 4. The next good commit rolls out normally.
	fixed := c.push("web v2 fixed", rolloutFiles(webDeployment("v2", ""), "v2"), 1, 2, 3)
	if code, out := c.rolloutStatus(1, "--commit", fixed, "--timeout", "1ms"); code != 2 {
		t.Errorf("rollout status with a timeout too short: exit %d, want 2\n%s", code, out)
	}
	if code, out := c.rolloutStatus(1, "--commit", fixed, "--timeout", "90s"); code != 0 {
		t.Fatalf("rollout status of the fixed commit: exit %d\n%s", code, out)
	}

	// 5. An agent killed with -9 during a rollout: one verdict, not stuck.
	v3 := c.push("web v3", rolloutFiles(webDeployment("v1", "        - {name: X, value: \"3\"}\n"), "v2"), 1, 2, 3)
	c.agents[2].waitFor("the v3 rollout under way", func(st *agent.Status) bool {
		w := workload(st, "web")
		return w != nil && w.Rollout != nil && w.Rollout.Updated > 0
	})
	// Its pending status delivered (and its record on the reporter's disk): a restart must
	// not send it again. (A reporter killed in the moment between a sink's answer and its
	// record may repeat it, with the same delivery ID: docs/commit-status.md.)
	for deadline := time.Now().Add(10 * time.Second); len(recv.states(v3)) == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	c.agents[2].kill(9)
	c.agents[2].start()
	c.agents[2].webhook()
	c.waitFate(v3, agent.CommitSucceeded, 1, 2, 3)

	// Every transition was reported once, by one node, signed.
	want := map[string][]string{
		good: {"pending", "success"}, crash: {"pending", "failure"}, unready: {"pending", "failure"},
		apiOnly: {"pending", "success"}, fixed: {"pending", "success"}, v3: {"pending", "success"},
	}
	deadline := time.Now().Add(30 * time.Second)
	for commit, states := range want {
		for !slices.Equal(recv.states(commit), states) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if got := recv.states(commit); !slices.Equal(got, states) {
			t.Errorf("webhook deliveries of %s = %v, want %v: %s", commit[:12], got, states, recv.dump(commit))
		}
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	if len(recv.bad) > 0 {
		t.Errorf("bad deliveries: %v", recv.bad)
	}
	for _, d := range recv.deliveries {
		if d.payload.Node != d.node {
			t.Errorf("delivery %s says node %s but came from %s", d.id, d.payload.Node, d.node)
		}
	}
}

// TestRolloutSurvivesNodeDeath kills a node (its agent and containers) while a rollout is
// under way: its replicas move to the others and the rollout ends with one verdict,
// reported once.
func TestRolloutSurvivesNodeDeath(t *testing.T) {
	c, recv := newReportingCluster(t)
	good := c.push("web", rolloutFiles(webDeployment("v1", ""), "v1"), 1, 2, 3)
	c.waitFate(good, agent.CommitSucceeded, 1, 2, 3)
	c.waitForRoutes(c.agents[1].status())

	// A minute of progress deadline: the replicas the dead node ran start elsewhere while
	// two cores run three nodes; the test is of the verdict, not of the machine's speed.
	next := c.push("web v2", rolloutFiles(strings.Replace(webDeployment("v2", ""), "progressDeadlineSeconds: 12", "progressDeadlineSeconds: 60", 1), "v1"), 1, 2, 3)
	c.agents[1].waitFor("the rollout under way", func(st *agent.Status) bool {
		w := workload(st, "web")
		return w != nil && w.Rollout != nil && w.Rollout.Updated > 0
	})
	c.killNode(3)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if cs := c.fate(1, next); cs != nil && cs.State != agent.CommitProgressing {
			break
		}
		for _, i := range []int{1, 2} {
			st := c.agents[i].status()
			if w := workload(st, "web"); w != nil {
				for _, in := range w.Instances {
					if in.Node == fmt.Sprintf("node%d", i) && in.Phase != agent.PhaseReady {
						out, err := getIn(c.net.nodes[i-1], "http://"+in.Addr+":8080/readyz")
						t.Logf("node%d: %s %s %s readyz: %q %v", i, in.ID, in.Phase, in.Addr, out, err)
					}
				}
			}
		}
		time.Sleep(time.Second)
	}
	c.waitFate(next, agent.CommitSucceeded, 1, 2)
	// node3 may have been the reporter, and died between sending a state and spreading its
	// record of it: then a survivor sends it again, with the same delivery ID, for the
	// receiver to drop. Counted by ID, each transition arrives once.
	for !slices.Equal(recv.transitions(next), []string{"pending", "success"}) && time.Now().Before(deadline.Add(30*time.Second)) {
		time.Sleep(100 * time.Millisecond)
	}
	if got := recv.transitions(next); !slices.Equal(got, []string{"pending", "success"}) {
		t.Errorf("webhook transitions = %v, want pending and success: %s", got, recv.dump(next))
	}
}

// transitions lists the states delivered for commit, in order, a delivery ID counted once.
func (r *receivers) transitions(commit string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, d := range r.deliveries {
		if d.payload.Commit == commit && !seen[d.id] {
			seen[d.id] = true
			out = append(out, d.payload.State)
		}
	}
	return out
}

// TestRolloutVerdictsAgreeAfterPartition cuts node3 off and commits a spec that only
// node3 may run. Alone, node3 places every replica on itself and judges the rollout good;
// nodes 1 and 2 cannot place it, and judge it failed at its progress deadline and revert.
// Once the network heals, every node holds both verdicts and follows the later one (the
// failure): node3 reverts too, and all three say the same of the commit.
func TestRolloutVerdictsAgreeAfterPartition(t *testing.T) {
	repo := testsupport.NewRepo(t)
	repo.Commit("nothing yet", map[string]string{"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: empty}\n"})
	flags := map[int][]string{}
	for i := 1; i <= 3; i++ {
		flags[i] = []string{"--pod-network", "on", "--route-mode", "vxlan"}
	}
	c := newClusterWith(t, repo, flags, 1, 2, 3)
	c.waitForSubnets(3)
	good := c.push("web", rolloutFiles(webDeployment("v1", ""), "v1"), 1, 2, 3)
	goodHash := webOf(c.waitFate(good, agent.CommitSucceeded, 1, 2, 3)).SpecHash

	c.net.cut(3)
	alone := func(i, alive int) {
		c.agents[i].waitFor(fmt.Sprint(alive, " alive members"), func(st *agent.Status) bool {
			n := 0
			for _, m := range st.Nodes {
				if m.Alive {
					n++
				}
			}
			return n == alive
		})
	}
	alone(1, 2)
	alone(3, 1)
	pinned := strings.Replace(webDeployment("v2", ""), "    spec:\n", "    spec:\n      nodeSelector: {kubernetes.io/hostname: node3}\n", 1)
	split := c.push("web v2 on node3 only", rolloutFiles(pinned, "v1"), 1, 2, 3)
	onNode3 := c.waitFate(split, agent.CommitSucceeded, 3)
	onMajority := c.waitFate(split, agent.CommitFailed, 1, 2)
	t.Logf("apart: node3 says %s (by %s), nodes 1 and 2 say %s (by %s: %s)", onNode3.State, webOf(onNode3).DecidedBy,
		onMajority.State, webOf(onMajority).DecidedBy, onMajority.Reason)
	if !webOf(onNode3).Decided.Before(webOf(onMajority).Decided) {
		t.Fatalf("the failure (%v) should come after node3's success (%v)", webOf(onMajority).Decided, webOf(onNode3).Decided)
	}

	c.net.heal(3)
	for i := 1; i <= 3; i++ {
		alone(i, 3)
	}
	cs := c.waitFate(split, agent.CommitFailed, 1, 2, 3)
	if !strings.Contains(cs.Reason, "progress deadline") {
		t.Errorf("after the heal the commit's reason is %q, want the majority's progress deadline", cs.Reason)
	}
	for i := 1; i <= 3; i++ {
		c.agents[i].waitFor("web back on v1 everywhere", func(st *agent.Status) bool { return webOn(st, goodHash) })
	}
}
