package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	gosync "sync"
	"testing"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/contrib/seccomp"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/oci"
	"github.com/containerd/containerd/plugin"
	"github.com/containerd/containerd/runtime/v2/runc/options"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/shoalhq/shoal/agent"
	"github.com/shoalhq/shoal/internal/testsupport"
)

// BenchmarkCommitToTenServing measures, in each iteration and in the same run:
//
//   - direct-ms: starting 10 hello containers straight through the containerd client
//     (create+start, as many at once as there are cores, in the same sandbox as Shoal's:
//     no NET_RAW, the RuntimeDefault seccomp profile) until all 10 answer HTTP;
//   - agent-ms: from the webhook of a commit that declares the same 10 workloads to all 10
//     answering HTTP through Shoal (fetch, load, plan, start);
//   - ratio: agent-ms / direct-ms.
//
// The image is present in both (pulled before the loop). Run it with
// `go test ./e2e -run '^$' -bench CommitToTenServing -benchtime 5x -count 3`.
func BenchmarkCommitToTenServing(b *testing.B) {
	const n = 10
	repo := testsupport.NewRepo(b)
	ports := make([]int, n)
	for i := range ports {
		ports[i] = testsupport.FreePort(b)
	}
	repo.Commit("empty", map[string]string{"README": "bench\n"})
	a := startAgent(b, repo, "bench-commit")

	client, err := containerd.New(daemon.Socket)
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	ctx := namespaces.WithNamespace(context.Background(), "bench-direct")
	image, err := client.Pull(ctx, registry+"/hello:v1", containerd.WithPullUnpack)
	if err != nil {
		b.Fatal(err)
	}
	var direct, viaAgent []time.Duration
	for i := 0; i < b.N; i++ {
		direct = append(direct, startDirect(b, ctx, client, image, ports, i))

		files := map[string]string{}
		for j, p := range ports {
			files[fmt.Sprintf("w%d.yaml", j)] = helloDeployment(fmt.Sprintf("w%d", j), "v1", 1, p,
				fmt.Sprintf("        - {name: MESSAGE, value: round%d}\n", i))
		}
		repo.Commit(fmt.Sprintf("round %d", i), files)
		began := time.Now()
		a.webhook()
		waitServing(b, ports, fmt.Sprintf("round%d", i))
		viaAgent = append(viaAgent, time.Since(began))

		for j := range ports {
			files[fmt.Sprintf("w%d.yaml", j)] = ""
		}
		head := repo.Commit("clear", files)
		a.webhook()
		a.waitFor("cleared", func(st *agent.Status) bool {
			return st != nil && st.Applied != nil && st.Applied.Commit == head && len(st.Workloads) == 0
		})
	}
	d, v := median(direct), median(viaAgent)
	b.ReportMetric(float64(d.Milliseconds()), "direct-ms")
	b.ReportMetric(float64(v.Milliseconds()), "agent-ms")
	b.ReportMetric(float64(v)/float64(d), "ratio")
	b.ReportMetric(0, "ns/op")
}

// startDirect starts n hello containers with the plain containerd client and waits until
// all answer; then removes them. It returns the time to answering.
func startDirect(b *testing.B, ctx context.Context, client *containerd.Client, image containerd.Image, ports []int, round int) time.Duration {
	b.Helper()
	runc := &options.Options{Root: filepath.Join(daemon.Dir, "bench-runc")}
	logDir := b.TempDir()
	began := time.Now()
	containers := make([]containerd.Container, len(ports))
	var wg gosync.WaitGroup
	sem := make(chan struct{}, runtime.NumCPU())
	errs := make(chan error, len(ports))
	for j, port := range ports {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			id := fmt.Sprintf("direct-%d-%d", round, j)
			c, err := client.NewContainer(ctx, id,
				containerd.WithImage(image),
				containerd.WithNewSnapshot(id, image),
				containerd.WithRuntime(plugin.RuntimeRuncV2, runc),
				containerd.WithNewSpec(oci.WithImageConfig(image),
					// The sandbox every Shoal container gets (docs/security-context.md), so
					// both paths start the same containers: no NET_RAW, RuntimeDefault seccomp.
					oci.WithDroppedCapabilities([]string{"CAP_NET_RAW"}), seccomp.WithDefaultProfile(),
					oci.WithHostNamespace(specs.NetworkNamespace), oci.WithHostHostsFile, oci.WithHostResolvconf,
					oci.WithEnv([]string{fmt.Sprintf("LISTEN=127.0.0.1:%d", port), fmt.Sprintf("MESSAGE=direct%d", round)})))
			if err != nil {
				errs <- err
				return
			}
			containers[j] = c
			task, err := c.NewTask(ctx, cio.LogFile(filepath.Join(logDir, id+".log")), func(_ context.Context, _ *containerd.Client, ti *containerd.TaskInfo) error {
				ti.Options = runc
				return nil
			})
			if err != nil {
				errs <- err
				return
			}
			errs <- task.Start(ctx)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	waitServing(b, ports, fmt.Sprintf("direct%d", round))
	took := time.Since(began)
	for _, c := range containers {
		if task, err := c.Task(ctx, nil); err == nil {
			exit, _ := task.Wait(ctx)
			task.Kill(ctx, 9)
			<-exit
			task.Delete(ctx)
		}
		c.Delete(ctx, containerd.WithSnapshotCleanup)
	}
	return took
}

// waitServing waits until every port answers with message.
func waitServing(b *testing.B, ports []int, message string) {
	b.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for _, p := range ports {
		url := fmt.Sprintf("http://127.0.0.1:%d/", p)
		for !strings.HasPrefix(get(url), message+" ") {
			if time.Now().After(deadline) {
				b.Fatalf("port %d does not answer %q", p, message)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
}

// BenchmarkAgentMemory50Instances reports the agent's resident memory (VmRSS) once it
// runs 50 instances and has settled. Run it with
// `go test ./e2e -run '^$' -bench AgentMemory -benchtime 1x -count 3`.
func BenchmarkAgentMemory50Instances(b *testing.B) {
	repo := testsupport.NewRepo(b)
	repo.Commit("50", map[string]string{"workers.yaml": idleDeployment("workers", 50)})
	a := startAgent(b, repo, "bench-rss")
	a.waitFor("50 ready", func(st *agent.Status) bool {
		w := workload(st, "workers")
		return st != nil && st.Converged && w != nil && w.Ready == 50
	})
	var rss []int64
	for i := 0; i < b.N; i++ {
		time.Sleep(3 * time.Second) // a few resyncs and status scrapes
		for j := 0; j < 20; j++ {
			a.status()
		}
		rss = append(rss, vmRSS(b, a.cmd.Process.Pid))
	}
	b.ReportMetric(float64(medianInt(rss))/(1<<20), "rss-MiB")
	b.ReportMetric(0, "ns/op")
}

// idleDeployment is a Deployment of hello instances that serve nothing, so that many fit
// on one node.
func idleDeployment(name string, replicas int) string {
	return strings.Replace(strings.Replace(helloDeployment(name, "v1", replicas, 1, ""),
		`value: "127.0.0.1:1"`, `value: "off"`, 1),
		"        ports:\n        - containerPort: 1\n", "", 1)
}

func vmRSS(b *testing.B, pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2]
}

func medianInt(xs []int64) int64 {
	ds := make([]time.Duration, len(xs))
	for i, x := range xs {
		ds[i] = time.Duration(x)
	}
	return int64(median(ds))
}

// BenchmarkFailover kills, in each iteration, the node that runs a serving workload (its
// agent and containers, with SIGKILL) and measures on a surviving node:
//
//   - detect-ms: from the kill to gossip declaring the node dead;
//   - restart-ms: from then to the workload answering HTTP on another node;
//   - total-ms: the two together.
//
// Then it revives the node. Run it with
// `go test ./e2e -run '^$' -bench Failover -benchtime 5x -count 1`.
func BenchmarkFailover(b *testing.B) {
	repo := testsupport.NewRepo(b)
	repo.Commit("empty", map[string]string{"README": "failover\n"})
	c := newCluster(b, repo, 1, 2, 3)
	c.agents[1].waitFor("three members", func(st *agent.Status) bool { return st != nil && len(st.Nodes) == 3 })
	repo.Commit("web", map[string]string{"web.yaml": servingDeployment("web", 1, 8080, "")})
	var detect, restart, total []time.Duration
	for i := 0; i < b.N; i++ {
		var victim int
		c.agents[1].waitFor("web ready on a node, every node alive", func(st *agent.Status) bool {
			alive := 0
			for _, n := range st.Nodes {
				if n.Alive {
					alive++
				}
			}
			nodes := where(st, "web")
			if alive != 3 || len(nodes) != 1 {
				return false
			}
			victim = int(nodes[0][4] - '0')
			return strings.Contains(get(fmt.Sprintf("http://%s:8080/", c.net.addr(victim))), "version v1")
		})
		watcher := c.agents[victim%3+1]
		killed := time.Now()
		c.killNode(victim)
		var dead time.Duration
		watcher.waitFor("web answering elsewhere", func(st *agent.Status) bool {
			if st == nil {
				return false
			}
			for _, n := range st.Nodes {
				if n.Name == fmt.Sprintf("node%d", victim) && !n.Alive && dead == 0 {
					dead = time.Since(killed)
				}
			}
			nodes := where(st, "web")
			if dead == 0 || len(nodes) != 1 || nodes[0] == fmt.Sprintf("node%d", victim) {
				return false
			}
			return strings.Contains(get(fmt.Sprintf("http://%s:8080/", c.net.addr(int(nodes[0][4]-'0')))), "version v1")
		})
		all := time.Since(killed)
		detect, restart, total = append(detect, dead), append(restart, all-dead), append(total, all)
		c.agents[victim].start()
	}
	b.ReportMetric(float64(median(detect).Milliseconds()), "detect-ms")
	b.ReportMetric(float64(median(restart).Milliseconds()), "restart-ms")
	b.ReportMetric(float64(median(total).Milliseconds()), "total-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkReadinessToDNS makes one of two backends fail its readiness probe in each
// iteration and measures, from the probe's verdict (as its node reports it) to the address
// leaving the answers of every node's DNS server, the median and the worst (p99 over the
// iterations) figure. Run it with
// `go test ./e2e -run '^$' -bench ReadinessToDNS -benchtime 20x -count 1`.
func BenchmarkReadinessToDNS(b *testing.B) {
	repo := testsupport.NewRepo(b)
	repo.Commit("empty", map[string]string{"README": "dns\n"})
	c := newCluster(b, repo, 1, 2, 3)
	c.agents[1].waitFor("three members", func(st *agent.Status) bool { return st != nil && len(st.Nodes) == 3 })
	backend := strings.Replace(servingDeployment("backend", 2, 9090, strings.ReplaceAll(antiAffinity, "spread", "backend")),
		"        ports:\n", "        readinessProbe:\n          httpGet: {path: /readyz, port: 9090}\n          periodSeconds: 1\n          failureThreshold: 1\n        ports:\n", 1)
	service := "apiVersion: v1\nkind: Service\nmetadata: {name: backend}\nspec:\n  selector: {app: backend}\n  ports: [{name: http, port: 9090}]\n"
	repo.Commit("backend", map[string]string{"backend.yaml": backend, "svc.yaml": service})
	st := c.agents[1].waitFor("two ready backends", func(st *agent.Status) bool { return len(where(st, "backend")) == 2 })
	nodes := where(st, "backend")
	failing := int(nodes[0][4] - '0')
	failingAddr := c.net.addr(failing)
	name := "backend.default.svc.cluster.local."
	inAnswers := func(want bool) time.Time {
		deadline := time.Now().Add(30 * time.Second)
		for {
			all := true
			for i := range c.agents {
				if strings.Contains(lookupA(nil, c.net.addr(i)+":53", name), failingAddr) != want {
					all = false
				}
			}
			if all {
				return time.Now()
			}
			if time.Now().After(deadline) {
				b.Fatalf("backend on node%d: in answers = %v never held on every node", failing, !want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	inAnswers(true)
	var lags []time.Duration
	for i := 0; i < b.N; i++ {
		get(fmt.Sprintf("http://%s:9090/fail", failingAddr))
		gone := inAnswers(false)
		st := c.agents[failing].status()
		var verdict time.Time
		if w := workload(st, "backend"); w != nil {
			for _, in := range w.Instances {
				if in.Node == fmt.Sprintf("node%d", failing) {
					verdict = in.ReadinessChanged
				}
			}
		}
		if verdict.IsZero() || verdict.After(gone) {
			b.Fatalf("no probe verdict before the DNS change (%v, %v)", verdict, gone)
		}
		lags = append(lags, gone.Sub(verdict))
		get(fmt.Sprintf("http://%s:9090/recover", failingAddr))
		inAnswers(true)
	}
	sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
	b.ReportMetric(float64(median(lags).Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(lags[(len(lags)*99)/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
}
