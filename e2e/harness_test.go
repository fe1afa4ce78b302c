package e2e

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoalhq/shoal/agent"
	"github.com/shoalhq/shoal/examples/imagebuild"
	"github.com/shoalhq/shoal/executor"
	"github.com/shoalhq/shoal/executor/containerdtest"
	"github.com/shoalhq/shoal/internal/testsupport"
	"github.com/shoalhq/shoal/network"
)

// Shared by every test of the package: built once in TestMain.
var (
	shoalBin string                 // the shoal binary under test
	registry string                 // host:port of the registry holding hello:v1 and hello:v2
	daemon   *containerdtest.Daemon // one private containerd; each test has its own namespace
)

func TestMain(m *testing.M) {
	if url := os.Getenv(clientEnv); url != "" {
		os.Exit(clientGet(url)) // a client run by a test inside a network namespace
	}
	flag.Parse()
	if testing.Short() {
		fmt.Println("e2e: every test here needs root, containerd, network namespaces and Git: skipped with -short")
		os.Exit(0)
	}
	code, err := setup(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e setup:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func setup(m *testing.M) (int, error) {
	dir, err := os.MkdirTemp("", "shoal-e2e-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	shoalBin = filepath.Join(dir, "shoal")
	if out, err := exec.Command("go", "build", "-o", shoalBin, "github.com/shoalhq/shoal/cmd/shoal").CombinedOutput(); err != nil {
		return 0, fmt.Errorf("build shoal: %v\n%s", err, out)
	}
	reg, err := imagebuild.StartRegistry("127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer reg.Close()
	registry = reg.Addr
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := imagebuild.BuildHello(ctx, dir, registry); err != nil {
		return 0, err
	}
	if err := buildResolvers(ctx, dir); err != nil {
		return 0, err
	}
	daemon, err = containerdtest.Start()
	if err != nil {
		return 0, err
	}
	defer daemon.Close()
	return m.Run(), nil
}

// resolverImages are the C library resolvers the DNS tests run in containers: the same
// program (testdata/resolve.c) linked statically against glibc and against musl.
var resolverImages = map[string][]string{
	"resolve-glibc": {"gcc", "-static", "-O2"},
	"resolve-musl":  {"musl-gcc", "-static", "-O2"},
}

// buildResolvers compiles the resolvers and pushes each as <registry>/<name>:v1.
func buildResolvers(ctx context.Context, dir string) error {
	for name, cc := range resolverImages {
		bin := filepath.Join(dir, name)
		cmd := exec.CommandContext(ctx, cc[0], append(cc[1:], "-o", bin, "testdata/resolve.c")...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s (apt-get install gcc musl-tools): %v\n%s", strings.Join(cmd.Args, " "), err, out)
		}
		img, err := imagebuild.Image(bin, imagebuild.Config{})
		if err != nil {
			return err
		}
		if err := imagebuild.Push(ctx, img, registry+"/"+name+":v1"); err != nil {
			return err
		}
	}
	return nil
}

// agentProc is a `shoal agent` process.
type agentProc struct {
	t         testing.TB
	args      []string
	addr      string
	namespace string
	secret    string
	token     string   // the API token, made at the first start
	caFile    string   // the CA of the API's certificate when it serves HTTPS
	netns     string   // the network namespace it runs in; empty: the test's own
	env       []string // extra environment
	cmd       *exec.Cmd
	log       *bytes.Buffer
	exited    chan struct{}
}

// startAgent runs an agent on the shared containerd, in a namespace of its own; tune may
// add flags and settings before it starts.
func startAgent(t testing.TB, repo *testsupport.Repo, namespace string, tune ...func(*agentProc)) *agentProc {
	t.Helper()
	a := &agentProc{
		t: t, addr: testsupport.FreeAddr(t), namespace: namespace, secret: "e2e-secret",
	}
	stateDir := t.TempDir()
	a.args = []string{"agent",
		"--node", "e2e-node", "--repo", repo.Dir, "--state-dir", stateDir,
		"--containerd-socket", daemon.Socket, "--containerd-namespace", namespace,
		"--listen", a.addr, "--poll-interval", "500ms", "--resync-interval", "2s",
		"--crash-backoff", "1s", "--log-level", "debug", "--dns-listen", "off",
		// These tests reach instances at the node's address: host networking.
		"--pod-network", "off",
	}
	for _, f := range tune {
		f(a)
	}
	a.start()
	t.Cleanup(func() {
		a.kill(syscall.SIGTERM)
		if t.Failed() {
			t.Logf("agent log:\n%s", a.log.String())
		}
		stopInstances(t, namespace, stateDir, "")
		cleanNamespace(t, namespace)
	})
	return a
}

func (a *agentProc) start() {
	a.t.Helper()
	if a.token == "" {
		a.token = fmt.Sprintf("e2e-token-%x", rand.Uint64())
		file := filepath.Join(a.t.TempDir(), "api-token")
		if err := os.WriteFile(file, []byte(a.token+"\n"), 0o600); err != nil {
			a.t.Fatal(err)
		}
		a.args = append(a.args, "--api-token-file", file)
	}
	a.log = &bytes.Buffer{}
	a.cmd = exec.Command(shoalBin, a.args...)
	if a.netns != "" {
		// Only the network namespace: `ip netns exec` would also unshare the mount
		// namespace, and containerd would not see the agent's Secret tmpfs mounts.
		a.cmd = exec.Command("nsenter", append([]string{"--net=/var/run/netns/" + a.netns, "--", shoalBin}, a.args...)...)
	}
	a.cmd.Env = append(os.Environ(), "SHOAL_WEBHOOK_SECRET="+a.secret)
	a.cmd.Env = append(a.cmd.Env, a.env...)
	a.cmd.Stdout, a.cmd.Stderr = a.log, a.log
	if err := a.cmd.Start(); err != nil {
		a.t.Fatal(err)
	}
	a.exited = make(chan struct{})
	go func() { a.cmd.Wait(); close(a.exited) }()
	a.waitFor("the API", func(st *agent.Status) bool { return st != nil })
}

// kill signals the agent and waits for it to exit.
func (a *agentProc) kill(sig syscall.Signal) {
	select {
	case <-a.exited:
		return
	default:
	}
	a.cmd.Process.Signal(sig)
	select {
	case <-a.exited:
	case <-time.After(20 * time.Second):
		a.cmd.Process.Kill()
		<-a.exited
	}
}

// get sends GET path to the agent's API with its token, over TLS when it serves TLS;
// nil when it does not answer.
func (a *agentProc) get(path string) *http.Response {
	client := http.Client{Timeout: 2 * time.Second} // a node cut off must not hang the test
	scheme := "http://"
	if a.caFile != "" {
		pem, _ := os.ReadFile(a.caFile)
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(pem)
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
		scheme = "https://"
	}
	req, _ := http.NewRequest(http.MethodGet, scheme+a.addr+path, nil)
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := client.Do(req)
	if err != nil {
		return nil
	}
	return resp
}

func (a *agentProc) status() *agent.Status {
	resp := a.get("/status")
	if resp == nil {
		return nil
	}
	defer resp.Body.Close()
	var st agent.Status
	if json.NewDecoder(resp.Body).Decode(&st) != nil {
		return nil
	}
	return &st
}

// cli runs `shoal ARGS --addr ADDR` against this agent, with its token.
func (a *agentProc) cli(args ...string) *exec.Cmd {
	args = append(args, "--addr", a.addr)
	if a.caFile != "" {
		args = append(args, "--ca-cert", a.caFile)
	}
	cmd := exec.Command(shoalBin, args...)
	cmd.Env = append(os.Environ(), "SHOAL_TOKEN="+a.token)
	return cmd
}

// waitFor polls the agent's status until cond holds; the deadline is generous because
// this is a functional check, not a timing one (BENCHMARKS.md has the timings).
func (a *agentProc) waitFor(what string, cond func(*agent.Status) bool) *agent.Status {
	a.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st := a.status()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			out, _ := json.MarshalIndent(st, "", "  ")
			a.t.Fatalf("timed out waiting for %s; status:\n%s", what, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// webhook posts a signed webhook, as a Git host would after a push.
func (a *agentProc) webhook() {
	a.t.Helper()
	body := []byte(`{"ref":"refs/heads/main"}`)
	mac := hmac.New(sha256.New, []byte(a.secret))
	mac.Write(body)
	req, _ := http.NewRequest(http.MethodPost, "http://"+a.addr+"/webhook", bytes.NewReader(body))
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		a.t.Fatalf("webhook: %s", resp.Status)
	}
}

// get fetches a URL on loopback and returns its body, or "" when nothing answers.
func get(url string) string {
	client := http.Client{Timeout: time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// stopInstances stops what the agent left running with the executor itself, as the agent
// would, so that volumes (tmpfs mounts), logs and pod networks (whose bridge is in the node's
// network namespace nodeNetNS) go too.
func stopInstances(t testing.TB, namespace, stateDir, nodeNetNS string) {
	ctx := context.Background()
	opts := []executor.Option{executor.WithSocket(daemon.Socket), executor.WithNamespace(namespace),
		executor.WithStateDir(filepath.Join(stateDir, "executor")), executor.WithRuncRoot(filepath.Join("/run/shoal", namespace, "runc"))}
	var pods *network.PodNetwork
	if cniDir := filepath.Join(stateDir, "network", "cni"); dirExists(cniDir) {
		cfg := network.DefaultPodNetworkConfig()
		cfg.StateDir, cfg.NodeNetNS = cniDir, nodeNetNS
		var err error
		if pods, err = network.NewPodNetwork(cfg); err != nil {
			t.Errorf("cleanup: %v", err)
		} else {
			opts = append(opts, executor.WithPodNetwork(pods.ForExecutor()))
			defer func() {
				if err := pods.Collect(ctx, func(string) bool { return false }); err != nil {
					t.Errorf("cleanup: pod networks: %v", err)
				}
			}()
		}
	}
	rt, err := executor.NewContainerd(ctx, opts...)
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	defer rt.Close()
	states, err := rt.List(ctx)
	if err != nil {
		t.Errorf("cleanup: %v", err)
	}
	for _, s := range states {
		if err := rt.Stop(ctx, s.ID, 0); err != nil {
			t.Errorf("cleanup: stop %s: %v", s.ID, err)
		}
	}
}

func dirExists(dir string) bool {
	info, err := os.Stat(dir)
	return err == nil && info.IsDir()
}

// cleanNamespace removes whatever a test left in its containerd namespace.
func cleanNamespace(t testing.TB, namespace string) {
	cmd := exec.Command("ctr", "-a", daemon.Socket, "-n", namespace, "tasks", "ls", "-q")
	out, _ := cmd.Output()
	for _, id := range strings.Fields(string(out)) {
		exec.Command("ctr", "-a", daemon.Socket, "-n", namespace, "tasks", "kill", "-s", "SIGKILL", id).Run()
	}
	time.Sleep(200 * time.Millisecond)
	out, _ = exec.Command("ctr", "-a", daemon.Socket, "-n", namespace, "containers", "ls", "-q").Output()
	for _, id := range strings.Fields(string(out)) {
		exec.Command("ctr", "-a", daemon.Socket, "-n", namespace, "tasks", "delete", "-f", id).Run()
		exec.Command("ctr", "-a", daemon.Socket, "-n", namespace, "containers", "delete", id).Run()
	}
}

// workload finds a workload in a status.
func workload(st *agent.Status, name string) *agent.WorkloadStatus {
	if st == nil {
		return nil
	}
	for i := range st.Workloads {
		if st.Workloads[i].Name == name {
			return &st.Workloads[i]
		}
	}
	return nil
}

// helloDeployment is a Deployment of the hello app serving on port.
func helloDeployment(name, tag string, replicas, port int, extraEnv string) string {
	return testsupport.Deployment{
		Name: name, Replicas: replicas, Container: "hello", Image: fmt.Sprintf("%s/hello:%s", registry, tag), GracePeriod: 2,
		ContainerYAML: fmt.Sprintf("        env:\n        - {name: LISTEN, value: \"127.0.0.1:%d\"}\n%s        ports:\n        - containerPort: %d\n", port, extraEnv, port),
	}.YAML()
}
