package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/shoalhq/shoal/agent"
	"github.com/shoalhq/shoal/executor"
	"github.com/shoalhq/shoal/internal/testsupport"
)

// cluster is several agents, each in a network namespace of its own (its own address),
// sharing the test's containerd (each in its own containerd namespace) and one Git repository.
type cluster struct {
	t      testing.TB
	net    *testNet
	repo   *testsupport.Repo
	key    string
	certs  string // the cluster CA (certs/ca) and each node's certificate (certs/nodeN)
	agents map[int]*agentProc
	// flags are extra agent flags per node, for nodes configured differently; env extra
	// environment of every node.
	flags map[int][]string
	env   []string
}

// testKey is the gossip key of test clusters.
var testKey = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))

func newCluster(t testing.TB, repo *testsupport.Repo, nodes ...int) *cluster {
	return newClusterWith(t, repo, nil, nodes...)
}

// newClusterWith starts nodes with the extra agent flags of flags (nil: none).
func newClusterWith(t testing.TB, repo *testsupport.Repo, flags map[int][]string, nodes ...int) *cluster {
	return newClusterWithEnv(t, repo, flags, nil, nodes...)
}

// newClusterWithEnv is newClusterWith with extra environment for every agent.
func newClusterWithEnv(t testing.TB, repo *testsupport.Repo, flags map[int][]string, env []string, nodes ...int) *cluster {
	c := &cluster{
		t: t, net: newTestNet(t), repo: repo, agents: map[int]*agentProc{},
		key: testKey, certs: t.TempDir(), flags: flags, env: env,
	}
	shoal(t, "ca", "init", "--dir", filepath.Join(c.certs, "ca"))
	for _, i := range nodes {
		c.start(i, c.key)
	}
	return c
}

// start runs node i's agent with the given gossip key, joining node 1.
func (c *cluster) start(i int, key string) *agentProc {
	c.t.Helper()
	ns := c.net.addNode(i)
	name := fmt.Sprintf("node%d", i)
	ctrNS := fmt.Sprintf("%s-%s", c.net.prefix, name)
	prePull(c.t, ctrNS)
	a := &agentProc{t: c.t, addr: c.net.addr(i) + ":7070", namespace: ctrNS, secret: "e2e-secret", netns: ns,
		env: append([]string{"SHOAL_GOSSIP_KEY=" + key}, c.env...)}
	stateDir := c.t.TempDir()
	certs := filepath.Join(c.certs, name)
	if _, err := os.Stat(certs); err != nil { // a restarted node keeps its certificate
		shoal(c.t, "ca", "issue", "--ca-dir", filepath.Join(c.certs, "ca"), "--node", name, "--ip", c.net.addr(i), "--out", certs)
	}
	a.args = []string{"agent",
		"--ca-cert", filepath.Join(c.certs, "ca", "ca.crt"),
		"--node-cert", filepath.Join(certs, "node.crt"), "--node-key", filepath.Join(certs, "node.key"),
		"--node", name, "--repo", c.repo.Dir, "--state-dir", stateDir,
		"--containerd-socket", daemon.Socket, "--containerd-namespace", ctrNS,
		"--netns", c.net.nsPath(ns), "--listen", a.addr,
		"--gossip-bind", c.net.addr(i) + ":7946",
		"--join", c.net.addr(1) + ":7946", "--join", c.net.addr(2) + ":7946", "--join", c.net.addr(3) + ":7946",
		"--join", c.net.addr(4) + ":7946",
		"--label", "topology.kubernetes.io/zone=zone-" + fmt.Sprint(i%2),
		"--cpu", "2", "--memory", "4Gi",
		"--poll-interval", "500ms", "--resync-interval", "2s", "--log-level", "debug",
		// DNS on the node's address; names outside the cluster go nowhere (a closed loopback port).
		"--dns-listen", c.net.addr(i) + ":53", "--dns-upstream", "127.0.0.1:9",
		"--pod-network", "off", // c.flags may turn it on
	}
	a.args = append(a.args, c.flags[i]...)
	a.start()
	c.t.Cleanup(func() {
		a.kill(syscall.SIGTERM)
		if c.t.Failed() {
			c.t.Logf("%s log (last 6 KB):\n%s", name, tail(a.log.String(), 6000))
			if dir := os.Getenv("SHOAL_E2E_LOGS"); dir != "" { // the whole log, for a failure to study
				os.WriteFile(filepath.Join(dir, c.net.prefix+"-"+name+".log"), a.log.Bytes(), 0o644)
			}
		}
		stopInstances(c.t, ctrNS, stateDir, c.net.nsPath(ns))
		cleanNamespace(c.t, ctrNS)
	})
	c.agents[i] = a
	return a
}

// shoal runs the shoal binary under test, failing the test if it fails.
func shoal(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command(shoalBin, args...).CombinedOutput(); err != nil {
		t.Fatalf("shoal %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// prePull puts the test images into a node's containerd namespace, so that agents in
// network namespaces (which cannot reach the test's loopback registry) find them present.
func prePull(t testing.TB, namespace string) {
	t.Helper()
	refs := []string{registry + "/hello:v1", registry + "/hello:v2"}
	for name := range resolverImages {
		refs = append(refs, registry+"/"+name+":v1")
	}
	for _, ref := range refs {
		out, err := exec.Command("ctr", "-a", daemon.Socket, "-n", namespace, "images", "pull", "--plain-http", ref).CombinedOutput()
		if err != nil {
			t.Fatalf("pre-pull: %v\n%s", err, out)
		}
	}
}

// killNode kills node i's agent and every container it ran with SIGKILL, as a power cut would.
func (c *cluster) killNode(i int) {
	a := c.agents[i]
	a.kill(syscall.SIGKILL)
	out, _ := exec.Command("ctr", "-a", daemon.Socket, "-n", a.namespace, "tasks", "ls", "-q").Output()
	for _, id := range strings.Fields(string(out)) {
		exec.Command("ctr", "-a", daemon.Socket, "-n", a.namespace, "tasks", "kill", "-s", "SIGKILL", id).Run()
	}
}

// running counts the running instances of each workload across every node, from containerd.
func (c *cluster) running() map[string]int {
	counts := map[string]int{}
	ctx := context.Background()
	for _, a := range c.agents {
		rt, err := executor.NewContainerd(ctx, executor.WithSocket(daemon.Socket), executor.WithNamespace(a.namespace),
			executor.WithStateDir(c.t.TempDir()), executor.WithRuncRoot(filepath.Join("/run/shoal", a.namespace, "runc")))
		if err != nil {
			c.t.Fatal(err)
		}
		states, err := rt.List(ctx)
		rt.Close()
		if err != nil {
			c.t.Fatal(err)
		}
		for _, s := range states {
			if s.Running() {
				counts[s.Workload]++
			}
		}
	}
	return counts
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// where maps each ready instance of a workload to its node, from one agent's status.
func where(st *agent.Status, name string) []string {
	var nodes []string
	if w := workload(st, name); w != nil {
		for _, in := range w.Instances {
			if in.Phase == agent.PhaseReady {
				nodes = append(nodes, in.Node)
			}
		}
	}
	sort.Strings(nodes)
	return nodes
}

// servingDeployment is a hello Deployment listening on port on its node's address.
func servingDeployment(name string, replicas, port int, extra string) string {
	d := helloDeployment(name, "v1", replicas, port, "")
	d = strings.Replace(d, fmt.Sprintf(`value: "127.0.0.1:%d"`, port), fmt.Sprintf(`value: ":%d"`, port), 1)
	return strings.Replace(d, "    spec:\n      terminationGracePeriodSeconds", "    spec:\n"+extra+"      terminationGracePeriodSeconds", 1)
}

// preferNode3 puts a workload on node3 while it lives, so that killing node3 moves it.
const preferNode3 = `      affinity:
        nodeAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
          - weight: 100
            preference:
              matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [node3]}]
`

const antiAffinity = `      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - labelSelector: {matchLabels: {app: spread}}
            topologyKey: kubernetes.io/hostname
`

// TestClusterSpreadsFailsOverAndHealsPartitions runs three nodes: a commit lands on all and
// replicas spread as the constraints say; a node killed with SIGKILL has its work started
// elsewhere; a node cut off and reconnected converges to exactly the desired count; a node
// without the gossip key is refused.
func TestClusterSpreadsFailsOverAndHealsPartitions(t *testing.T) {
	repo := testsupport.NewRepo(t)
	repo.Commit("empty", map[string]string{"README": "cluster\n"})
	c := newCluster(t, repo, 1, 2, 3)
	c.agents[1].waitFor("three members", func(st *agent.Status) bool { return st != nil && len(st.Nodes) == 3 })
	// Committed once the cluster formed: running instances are not moved without a reason.
	head := repo.Commit("apps", map[string]string{
		"spread.yaml": strings.Replace(idleDeployment("spread", 3), "    spec:\n      terminationGracePeriodSeconds",
			"    spec:\n"+antiAffinity+"      terminationGracePeriodSeconds", 1),
		"w1.yaml": servingDeployment("w1", 1, 8081, ""),
		"w2.yaml": servingDeployment("w2", 1, 8082, ""),
		"w3.yaml": servingDeployment("w3", 1, 8083, preferNode3),
	})

	allApplied := func(st *agent.Status) bool {
		if st == nil || len(st.Nodes) != 3 {
			return false
		}
		for _, n := range st.Nodes {
			if !n.Alive || n.Revision != head {
				return false
			}
		}
		return len(where(st, "spread")) == 3 && len(where(st, "w1"))+len(where(st, "w2"))+len(where(st, "w3")) == 3
	}
	st := c.agents[1].waitFor("the commit applied on all three nodes", allApplied)
	if got := strings.Join(where(st, "spread"), ","); got != "node1,node2,node3" {
		t.Errorf("anti-affinity: spread runs on %s, want one per node", got)
	}
	home := map[string]string{} // workload → node, for the w* workloads
	for _, w := range []string{"w1", "w2", "w3"} {
		home[w] = where(st, w)[0]
		port := 8080 + int(w[1]-'0')
		node := int(home[w][4] - '0')
		if body := get(fmt.Sprintf("http://%s:%d/", c.net.addr(node), port)); !strings.Contains(body, "version v1") {
			t.Errorf("%s does not answer on %s: %q", w, home[w], body)
		}
	}

	// Failover: SIGKILL node 3 and everything it runs.
	var moved []string
	for w, n := range home {
		if n == "node3" {
			moved = append(moved, w)
		}
	}
	if len(moved) == 0 {
		t.Fatalf("nothing runs on node3 (%v): the preferred node affinity was not honoured", home)
	}
	killed := time.Now()
	c.killNode(3)
	var detected time.Duration
	st = c.agents[1].waitFor("node3's work running elsewhere", func(st *agent.Status) bool {
		if st == nil {
			return false
		}
		for _, n := range st.Nodes {
			if n.Name == "node3" && !n.Alive && detected == 0 {
				detected = time.Since(killed)
			}
		}
		for _, w := range moved {
			nodes := where(st, w)
			if len(nodes) != 1 || nodes[0] == "node3" {
				return false
			}
			port := 8080 + int(w[1]-'0')
			if !strings.Contains(get(fmt.Sprintf("http://%s:%d/", c.net.addr(int(nodes[0][4]-'0')), port)), "version v1") {
				return false
			}
		}
		return detected > 0
	})
	t.Logf("failover of %v: node3 declared dead after %v, its work answering elsewhere after %v",
		moved, detected.Round(time.Millisecond), time.Since(killed).Round(time.Millisecond))
	if w := workload(st, "spread"); w == nil || len(w.Unplaced) != 1 || !strings.Contains(w.Unplaced[0].Reason, "anti-affinity") {
		t.Errorf("with two nodes left one spread replica must be unplaced for anti-affinity: %+v", w)
	}

	// The node comes back, then a partition: cut node 3 off and reconnect it.
	c.agents[3].start()
	c.agents[1].waitFor("node3 back and the spread complete", func(st *agent.Status) bool {
		return len(where(st, "spread")) == 3
	})
	c.net.cut(3)
	c.agents[3].waitFor("node3 alone runs what it can", func(st *agent.Status) bool {
		return st != nil && len(where(st, "w1")) == 1 && len(where(st, "w2")) == 1 && len(where(st, "w3")) == 1 &&
			where(st, "w1")[0] == "node3" && where(st, "w2")[0] == "node3" && where(st, "w3")[0] == "node3"
	})
	c.net.heal(3)
	want := map[string]int{"spread": 3, "w1": 1, "w2": 1, "w3": 1}
	deadline := time.Now().Add(60 * time.Second)
	for fmt.Sprint(c.running()) != fmt.Sprint(want) {
		if time.Now().After(deadline) {
			t.Fatalf("after healing the partition: running %v, want %v", c.running(), want)
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.agents[1].waitFor("every node alive again", func(st *agent.Status) bool {
		alive := 0
		for _, n := range st.Nodes {
			if n.Alive {
				alive++
			}
		}
		return alive == 3
	})

	// A node with another key is refused: it never becomes a member, and it runs nothing
	// (it used to run every workload as a cluster of one), saying why.
	wrong := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("x"), 32))
	stranger := c.start(4, wrong)
	time.Sleep(3 * time.Second)
	for _, a := range []*agentProc{c.agents[1], stranger} {
		if st := a.status(); st == nil || len(st.Nodes) != map[*agentProc]int{c.agents[1]: 3, stranger: 1}[a] {
			t.Errorf("%s sees nodes %+v: the node with the wrong key must stay outside", a.addr, st.Nodes)
		}
	}
	st = stranger.waitFor("the reason it runs nothing", func(st *agent.Status) bool { return st != nil && st.NotJoined != "" && st.Desired != nil })
	for _, w := range st.Workloads {
		for _, in := range w.Instances {
			if in.Node == "node4" {
				t.Errorf("node4 runs %s/%s although it has not joined", w.Name, in.ID)
			}
		}
	}
	if resp := stranger.get("/readyz"); resp == nil || resp.StatusCode != 503 {
		t.Errorf("node4 /readyz: %v, want 503", resp)
	} else {
		resp.Body.Close()
	}
}

// TestServicesFindEachOtherByDNS runs the two-tier example on three nodes: the frontend
// reaches its backend by the Service's short name; a backend that fails its readiness probe
// leaves the answers of every node's DNS server and comes back when it recovers; a backend
// on a node that dies leaves the answers once the death is detected.
func TestServicesFindEachOtherByDNS(t *testing.T) {
	repo := testsupport.NewRepo(t)
	repo.Commit("empty", map[string]string{"README": "dns\n"})
	c := newCluster(t, repo, 1, 2, 3)
	c.agents[1].waitFor("three members", func(st *agent.Status) bool { return st != nil && len(st.Nodes) == 3 })
	backend := strings.Replace(servingDeployment("backend", 2, 9090, strings.ReplaceAll(antiAffinity, "spread", "backend")),
		"        ports:\n", `        readinessProbe:
          httpGet: {path: /readyz, port: 9090}
          periodSeconds: 1
          failureThreshold: 1
        ports:
`, 1)
	backend = strings.Replace(backend, "value: v1", "value: v1", 1)
	frontend := servingDeployment("frontend", 1, 8080, "")
	frontend = strings.Replace(frontend, "        ports:\n", "        - {name: UPSTREAM, value: \"http://backend:9090/\"}\n        - {name: MESSAGE, value: frontend}\n        ports:\n", 1)
	frontend = strings.Replace(frontend, "        - {name: UPSTREAM", "        - {name: UPSTREAM", 1)
	service := "apiVersion: v1\nkind: Service\nmetadata: {name: backend}\nspec:\n  selector: {app: backend}\n  ports: [{name: http, port: 9090}]\n"
	files := map[string]string{"backend.yaml": backend, "frontend.yaml": frontend, "backend-svc.yaml": service}
	for name := range resolverImages {
		files[name+".yaml"] = resolverDeployment(name)
	}
	repo.Commit("two tiers", files)

	st := c.agents[1].waitFor("backends ready on two nodes, frontend ready", func(st *agent.Status) bool {
		return len(where(st, "backend")) == 2 && len(where(st, "frontend")) == 1
	})
	front := int(where(st, "frontend")[0][4] - '0')
	frontURL := fmt.Sprintf("http://%s:8080/", c.net.addr(front))
	c.agents[1].waitFor("the frontend reaches the backend by name", func(*agent.Status) bool {
		return strings.Contains(get(frontURL), "-> http://backend:9090/: hello (version v1)")
	})

	backends := where(st, "backend")
	wantAddrs := func(nodes ...string) string {
		var addrs []string
		for _, n := range nodes {
			addrs = append(addrs, c.net.addr(int(n[4]-'0')))
		}
		sort.Strings(addrs)
		return strings.Join(addrs, ",")
	}
	answersEverywhere := func(what, want string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			agree := true
			var got []string
			for i := range c.agents {
				addrs := lookupA(t, c.net.addr(i)+":53", "backend.default.svc.cluster.local.")
				got = append(got, fmt.Sprintf("node%d:%s", i, addrs))
				if c.agents[i].cmd.ProcessState == nil && addrs != want {
					agree = false
				}
			}
			if agree {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: DNS answers %v, want %s on every live node", what, got, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	answersEverywhere("both backends ready", wantAddrs(backends...))
	for name := range resolverImages {
		// glibc and musl in containers resolve the short name through resolv.conf's search path.
		want := "resolve backend: "
		c.agents[1].waitFor(name+" resolving backend", func(st *agent.Status) bool {
			nodes := where(st, name)
			if len(nodes) != 1 {
				return false
			}
			out, _ := c.agents[int(nodes[0][4]-'0')].cli("logs", name, "--tail", "3").Output()
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			last := lines[len(lines)-1]
			i := strings.Index(last, want)
			if i < 0 {
				return false
			}
			got := strings.Fields(last[i+len(want):])
			sort.Strings(got)
			return strings.Join(got, ",") == wantAddrs(backends...)
		})
	}

	failing := int(backends[0][4] - '0')
	failedAt := time.Now()
	get(fmt.Sprintf("http://%s:9090/fail", c.net.addr(failing)))
	answersEverywhere("a backend failing its readiness probe", wantAddrs(backends[1]))
	t.Logf("a failing backend left every node's answers %v after /fail (probe period 1s, threshold 1)",
		time.Since(failedAt).Round(time.Millisecond))
	get(fmt.Sprintf("http://%s:9090/recover", c.net.addr(failing)))
	answersEverywhere("the backend recovered", wantAddrs(backends...))

	// The node of the other backend dies: its address leaves the answers once detected.
	dying := int(backends[1][4] - '0')
	if dying == 1 {
		dying = failing // keep node 1, which the others joined through, alive
	}
	survivor := backends[0]
	if dying == failing {
		survivor = backends[1]
	}
	c.killNode(dying)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok := true
		for i := range c.agents {
			if i == dying {
				continue
			}
			addrs := lookupA(t, c.net.addr(i)+":53", "backend.default.svc.cluster.local.")
			if strings.Contains(addrs, c.net.addr(dying)) || !strings.Contains(addrs, wantAddrs(survivor)) && addrs != "" {
				ok = false
			}
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node%d's backend still answered after its death", dying)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := lookupA(t, c.net.addr(1)+":53", "nosuch.default.svc.cluster.local."); got != "NXDOMAIN" {
		t.Errorf("unknown name: %s, want NXDOMAIN", got)
	}
}

// lookupA asks a DNS server for name's A records and returns the addresses sorted and
// comma-joined, or the response code when there are none.
func lookupA(_ testing.TB, server, name string) string {
	m := new(mdns.Msg)
	m.SetQuestion(name, mdns.TypeA)
	client := mdns.Client{Timeout: time.Second}
	r, _, err := client.Exchange(m, server)
	if err != nil {
		return "error: " + err.Error()
	}
	var addrs []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*mdns.A); ok {
			addrs = append(addrs, a.A.String())
		}
	}
	if len(addrs) == 0 {
		return mdns.RcodeToString[r.Rcode]
	}
	sort.Strings(addrs)
	return strings.Join(addrs, ",")
}

// TestTwoByTwoPartitionHeals splits four nodes into two pairs for longer than memberlist keeps
// gossiping to the dead (30 s), so that each side forgets the other, and checks that once the
// network heals the cluster merges again and converges to exactly the desired instances.
func TestTwoByTwoPartitionHeals(t *testing.T) {
	repo := testsupport.NewRepo(t)
	repo.Commit("empty", map[string]string{"README": "partition\n"})
	c := newCluster(t, repo, 1, 2, 3, 4)
	members := func(n int) func(*agent.Status) bool {
		return func(st *agent.Status) bool {
			alive := 0
			if st != nil {
				for _, node := range st.Nodes {
					if node.Alive {
						alive++
					}
				}
			}
			return alive == n
		}
	}
	c.agents[1].waitFor("four members", members(4))
	repo.Commit("work", map[string]string{"idle.yaml": idleDeployment("idle", 2)})
	want := fmt.Sprint(map[string]int{"idle": 2})
	waitRunning := func(what, want string) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for fmt.Sprint(c.running()) != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: running %v, want %s", what, c.running(), want)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitRunning("before the partition", want)

	for _, pair := range [][2]int{{1, 3}, {1, 4}, {2, 3}, {2, 4}} {
		c.net.between(pair[0], pair[1], "add")
	}
	c.agents[1].waitFor("each side sees two members", members(2))
	c.agents[3].waitFor("each side sees two members", members(2))
	waitRunning("both sides run the workload", fmt.Sprint(map[string]int{"idle": 4}))
	time.Sleep(35 * time.Second) // past GossipToTheDeadTime: each side has forgotten the other
	for _, pair := range [][2]int{{1, 3}, {1, 4}, {2, 3}, {2, 4}} {
		c.net.between(pair[0], pair[1], "del")
	}
	c.agents[1].waitFor("four members again", members(4))
	waitRunning("after the heal", want)
}

// resolverDeployment runs one of the resolverImages, looking up "backend" every second.
func resolverDeployment(name string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s}
spec:
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: resolve
        image: %[2]s/%[1]s:v1
        args: [backend]
`, name, registry)
}
