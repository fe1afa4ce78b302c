package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"

	"github.com/shoalhq/shoal/agent"
	"github.com/shoalhq/shoal/internal/testsupport"
	"github.com/shoalhq/shoal/network"
)

// clientEnv makes the test binary a one-shot HTTP client (see TestMain): tests run it
// inside a node's or a client's network namespace, where pod and Service addresses are
// reachable, so that no test traffic is routed from the machine's own namespace.
const clientEnv = "SHOAL_E2E_GET"

// clientGet GETs url, prints the body and returns the exit code: 0 for a 2xx answer.
func clientGet(url string) int {
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		fmt.Print("error: ", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	fmt.Print(string(body))
	if resp.StatusCode/100 != 2 {
		return 1
	}
	return 0
}

// getIn GETs url from inside network namespace ns.
func getIn(ns, url string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", "--net=/var/run/netns/"+ns, "--", os.Args[0])
	cmd.Env = append(os.Environ(), clientEnv+"="+url)
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("GET %s in %s: %v: %s", url, ns, err, out)
	}
	return string(out), nil
}

// tierDeployment is tier i of a chain of six: every tier listens on the same containerPort
// (8080, named http) and calls the next tier's Service by name on port 80.
func tierDeployment(i, replicas int, version string) string {
	env := "        - {name: LISTEN, value: \":8080\"}\n" +
		"        - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}\n"
	if i < 6 {
		env += fmt.Sprintf("        - {name: UPSTREAM, value: \"http://tier%d/\"}\n", i+1)
	}
	return testsupport.Deployment{
		Name: fmt.Sprintf("tier%d", i), Replicas: replicas, Container: "hello", Image: registry + "/hello:" + version, GracePeriod: 2,
		ContainerYAML: "        env:\n" + env +
			"        ports:\n        - {name: http, containerPort: 8080}\n" +
			"        readinessProbe: {httpGet: {path: /readyz, port: http}, periodSeconds: 1, failureThreshold: 1}\n",
	}.YAML()
}

// tierService is tier i's Service: port 80 to the named or numbered target port.
func tierService(i int, extra string) string {
	target := "http"
	if i%2 == 0 {
		target = "8080"
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: tier%d}
spec:
  selector: {app: tier%d}
%s  ports:
  - {name: web, port: 80, targetPort: %s}
`, i, i, extra, target)
}

// chainManifests is the application: six tiers, more replicas of tier2 than nodes, tier1
// exposed as a NodePort.
func chainManifests(version2 string) map[string]string {
	files := map[string]string{}
	replicas := map[int]int{1: 3, 2: 5, 3: 2, 4: 2, 5: 2, 6: 2}
	for i := 1; i <= 6; i++ {
		v := "v1"
		if i == 2 {
			v = version2
		}
		files[fmt.Sprintf("tier%d.yaml", i)] = tierDeployment(i, replicas[i], v)
		extra := ""
		if i == 1 {
			extra = "  type: NodePort\n"
			files["tier1-svc.yaml"] = strings.Replace(tierService(i, extra), "targetPort: http}", "targetPort: http, nodePort: 30080}", 1)
			continue
		}
		files[fmt.Sprintf("tier%d-svc.yaml", i)] = tierService(i, extra)
	}
	return files
}

// TestPodNetworkVXLAN and TestPodNetworkHostGW run the same application on three nodes,
// one with each way of reaching other nodes' instances.
func TestPodNetworkVXLAN(t *testing.T)  { testPodNetwork(t, "vxlan", true) }
func TestPodNetworkHostGW(t *testing.T) { testPodNetwork(t, "host-gw", false) }

func testPodNetwork(t *testing.T, mode string, full bool) {
	repo := testsupport.NewRepo(t)
	repo.Commit("nothing yet", map[string]string{"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: empty}\n"})
	flags := map[int][]string{}
	for i := 1; i <= 3; i++ {
		flags[i] = []string{"--pod-network", "on", "--route-mode", mode}
	}
	var c *cluster
	tmp := filepath.Dir(t.TempDir())                  // the parent of every state directory of this test
	t.Cleanup(func() { checkNothingLeft(t, c, tmp) }) // runs after every cleanup of the cluster
	c = newClusterWith(t, repo, flags, 1, 2, 3)
	a := c.agents[1]
	c.waitForSubnets(3)
	repo.Commit("six tiers on one port", chainManifests("v1"))
	for _, ag := range c.agents {
		ag.webhook()
	}
	st := a.waitFor("every tier ready on 3 nodes", func(st *agent.Status) bool {
		for i := 1; i <= 6; i++ {
			w := workload(st, fmt.Sprintf("tier%d", i))
			if w == nil || w.Ready != w.Replicas {
				return false
			}
		}
		return len(st.Nodes) == 3
	})
	c.waitForRoutes(st)
	subnets := map[string]bool{}
	for _, n := range st.Nodes {
		if n.PodSubnet == "" || subnets[n.PodSubnet] {
			t.Fatalf("node %s has pod subnet %q (nodes: %+v)", n.Name, n.PodSubnet, st.Nodes)
		}
		subnets[n.PodSubnet] = true
	}
	// Every instance of tier1 (one per node) calls the chain by Service names and ports:
	// each hop resolves a name to a virtual IP and lands on port 8080 of some node.
	for _, in := range workload(st, "tier1").Instances {
		for _, ns := range c.net.nodes {
			body, err := getIn(ns, "http://"+in.Addr+":8080/")
			if err != nil || strings.Count(body, "hello (version v1)") != 6 {
				t.Fatalf("tier1 %s on %s from %s: %v\n%s", in.ID, in.Node, ns, err, body)
			}
		}
	}
	if !full {
		return
	}
	// The virtual IP from each node itself, and the NodePort from outside the cluster.
	vip := lookupA(t, c.net.addr(1)+":53", "tier6.default.svc.cluster.local.")
	for _, ns := range c.net.nodes {
		if _, err := getIn(ns, "http://"+vip+"/"); err != nil {
			t.Fatal(err)
		}
	}
	client := c.net.addClient(200)
	if body, err := getIn(client, "http://"+c.net.addr(2)+":30080/"); err != nil || strings.Count(body, "hello (version v1)") != 6 {
		t.Fatalf("NodePort from outside the cluster: %v\n%s", err, body)
	}

	// The Downward API gives an instance its own address.
	tier6 := workload(st, "tier6").Instances
	for _, in := range tier6 {
		if got, err := getIn(c.net.nodes[0], "http://"+in.Addr+":8080/env/POD_IP"); err != nil || got != in.Addr {
			t.Fatalf("status.podIP of %s: %q %v, want %s", in.ID, got, err, in.Addr)
		}
	}
	// A readiness failure takes the instance out of the virtual IP's rotation on every node.
	if _, err := getIn(c.net.nodes[0], "http://"+tier6[0].Addr+":8080/fail"); err != nil {
		t.Fatal(err)
	}
	failed := time.Now()
	a.waitFor("tier6 one ready", func(st *agent.Status) bool { return workload(st, "tier6").Ready == 1 })
	time.Sleep(time.Second) // every node's proxy has had a second to follow
	for _, ns := range c.net.nodes {
		for range 10 {
			host, err := getIn(ns, "http://"+vip+"/env/POD_IP")
			if err != nil || host == tier6[0].Addr {
				t.Fatalf("from %s, %s after its readiness failed %v ago: %q %v", ns, vip, time.Since(failed), host, err)
			}
		}
	}

	if _, err := getIn(c.net.nodes[0], "http://"+tier6[0].Addr+":8080/recover"); err != nil {
		t.Fatal(err)
	}
	a.waitFor("tier6 ready again", func(st *agent.Status) bool { return workload(st, "tier6").Ready == 2 })

	// A rolling update of tier2 serves every request of a client loop.
	vip2 := lookupA(t, c.net.addr(3)+":53", "tier2.default.svc.cluster.local.")
	stop := make(chan struct{})
	errs := make(chan error, 1)
	go func() {
		defer close(errs)
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := getIn(c.net.nodes[2], "http://"+vip2+"/"); err != nil {
				errs <- fmt.Errorf("request %d during the rolling update: %w", n, err)
				return
			}
		}
	}()
	repo.Commit("tier2 v2", chainManifests("v2"))
	for _, ag := range c.agents {
		ag.webhook()
	}
	a.waitFor("tier2 on v2", func(st *agent.Status) bool {
		w := workload(st, "tier2")
		if w.Ready != w.Replicas || len(w.Instances) != w.Replicas {
			return false
		}
		for _, in := range w.Instances {
			if in.SpecHash != w.SpecHash {
				return false
			}
		}
		return true
	})
	close(stop)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}

	// kill -9 of an agent: nothing restarts, addresses and rules stay.
	before := workload(c.agents[2].status(), "tier2").Instances
	c.agents[2].kill(syscall.SIGKILL)
	if _, err := getIn(c.net.nodes[0], "http://"+vip+"/"); err != nil {
		t.Fatalf("with node2's agent down: %v", err)
	}
	c.agents[2].start()
	after := c.agents[2].waitFor("adoption", func(st *agent.Status) bool { return st.Adopted && st.Converged })
	for _, in := range before {
		for _, got := range workload(after, "tier2").Instances {
			if got.ID == in.ID && (got.Addr != in.Addr) {
				t.Errorf("instance %s moved from %s to %s across an agent restart", in.ID, in.Addr, got.Addr)
			}
		}
	}
	for _, in := range workload(after, "tier2").Instances {
		if in.Restarts != 0 {
			t.Errorf("instance %s restarted %d times across an agent restart", in.ID, in.Restarts)
		}
	}

	// Node 3 dies: its routes go from the others, and what it ran is reachable elsewhere.
	c.killNode(3)
	dead := ""
	for _, n := range st.Nodes {
		if n.Name == "node3" {
			dead = strings.TrimSuffix(n.PodSubnet, "/24")
		}
	}
	a.waitFor("node3's work elsewhere", func(st *agent.Status) bool {
		for i := 1; i <= 6; i++ {
			w := workload(st, fmt.Sprintf("tier%d", i))
			if w.Ready != w.Replicas {
				return false
			}
			for _, in := range w.Instances {
				if in.Node == "node3" {
					return false
				}
			}
		}
		return true
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, _ := exec.Command("ip", "-n", c.net.nodes[0], "route").Output()
		if !strings.Contains(string(out), dead) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node1 still routes node3's subnet %s:\n%s", dead, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if body, err := getIn(c.net.nodes[0], "http://"+c.net.addr(1)+":30080/"); err != nil || strings.Count(body, "hello (version") != 6 {
		t.Fatalf("after node3's death: %v\n%s", err, body)
	}
}

// checkNothingLeft fails the test when the cluster left instances' network namespaces
// mounted or any of its namespaces behind (the nodes' namespaces hold their bridges,
// tunnels, routes and nftables tables: those go with them).
func checkNothingLeft(t *testing.T, c *cluster, tmp string) {
	if c == nil {
		return
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mounts), "\n") {
		if strings.Contains(line, "/network/cni/netns/") && strings.Contains(line, tmp+"/") {
			t.Errorf("an instance's network namespace is still mounted: %s", line)
		}
	}
	out, _ := exec.Command("ip", "netns", "list").Output()
	if strings.Contains(string(out), c.net.prefix) {
		t.Errorf("namespaces left behind:\n%s", out)
	}
}

// BenchmarkReadinessToVIP measures how long after a readiness probe's failing verdict the
// instance is out of its Service's virtual IP rotation on every node: gone from the proxy's
// endpoint map in each node's nftables table.
func BenchmarkReadinessToVIP(b *testing.B) {
	repo := testsupport.NewRepo(b)
	repo.Commit("empty", map[string]string{"README": "vip\n"})
	flags := map[int][]string{}
	for i := 1; i <= 3; i++ {
		flags[i] = []string{"--pod-network", "on"}
	}
	c := newClusterWith(b, repo, flags, 1, 2, 3)
	a := c.agents[1]
	c.waitForSubnets(3)
	repo.Commit("tier6", map[string]string{"tier6.yaml": tierDeployment(6, 2, "v1"), "svc.yaml": tierService(6, "")})
	st := a.waitFor("two ready instances", func(st *agent.Status) bool { w := workload(st, "tier6"); return w != nil && w.Ready == 2 })
	failing := workload(st, "tier6").Instances[0]
	addr := netip.MustParseAddr(failing.Addr).As4()
	inRotation := func(want bool) time.Time {
		deadline := time.Now().Add(30 * time.Second)
		for {
			all := true
			for _, ns := range c.net.nodes {
				if proxiesTo(b, ns, addr) != want {
					all = false
				}
			}
			if all {
				return time.Now()
			}
			if time.Now().After(deadline) {
				b.Fatalf("%s in rotation = %v never held on every node", failing.ID, !want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	inRotation(true)
	var lags []time.Duration
	owner := c.agents[int(failing.Node[4]-'0')]
	for i := 0; i < b.N; i++ {
		if _, err := getIn(c.net.nodes[0], "http://"+failing.Addr+":8080/fail"); err != nil {
			b.Fatal(err)
		}
		gone := inRotation(false)
		var verdict time.Time
		for _, in := range workload(owner.status(), "tier6").Instances {
			if in.ID == failing.ID {
				verdict = in.ReadinessChanged
			}
		}
		if verdict.IsZero() || verdict.After(gone) {
			b.Fatalf("no probe verdict before the rotation changed (%v, %v)", verdict, gone)
		}
		lags = append(lags, gone.Sub(verdict))
		if _, err := getIn(c.net.nodes[0], "http://"+failing.Addr+":8080/recover"); err != nil {
			b.Fatal(err)
		}
		inRotation(true)
	}
	slices.Sort(lags)
	b.ReportMetric(float64(median(lags).Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(lags[(len(lags)*99)/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// proxiesTo reports whether the proxy of the node in namespace ns sends Service traffic
// to addr: whether an element of its endpoint map names it.
func proxiesTo(b *testing.B, ns string, addr [4]byte) bool {
	f, err := os.Open("/var/run/netns/" + ns)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	conn, err := nftables.New(nftables.WithNetNSFd(int(f.Fd())))
	if err != nil {
		b.Fatal(err)
	}
	table := &nftables.Table{Name: "shoal", Family: nftables.TableFamilyIPv4}
	set, err := conn.GetSetByName(table, "service-endpoints")
	if err != nil {
		return false // no table yet
	}
	elems, err := conn.GetSetElements(set)
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range elems {
		if bytes.Contains(e.Val, addr[:]) {
			return true
		}
	}
	return false
}

// waitForSubnets waits until every agent sees n alive members with pod subnets: a node
// routes to another's instances only once it knows that node's claim.
// waitForRoutes waits until every agent's node routes to every other node's pod subnet
// in st (routes are set by a worker beside the agent, a moment after it learns a claim; a
// peer it could not verify yet is offered again seconds later), so that instances reported
// ready are also reachable from every node.
func (c *cluster) waitForRoutes(st *agent.Status) {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, a := range c.agents {
		for {
			out, err := exec.Command("nsenter", "--net=/var/run/netns/"+a.netns, "--", "ip", "-4", "route", "show", "proto", strconv.Itoa(int(network.RouteProtocol))).CombinedOutput()
			missing := ""
			for _, n := range st.Nodes {
				if n.PodSubnet != "" && !strings.HasPrefix(a.addr, n.Addr+":") && !strings.Contains(string(out), n.PodSubnet+" ") {
					missing = n.PodSubnet
				}
			}
			if err == nil && missing == "" {
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("%s has no route to %s after 30 s: %v\n%s", a.netns, missing, err, out)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func (c *cluster) waitForSubnets(n int) {
	c.t.Helper()
	for _, a := range c.agents {
		a.waitFor(fmt.Sprint(n, " members with pod subnets"), func(st *agent.Status) bool {
			seen := 0
			for _, node := range st.Nodes {
				if node.PodSubnet != "" && node.Alive {
					seen++
				}
			}
			return seen == n
		})
	}
}
