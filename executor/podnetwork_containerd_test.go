package executor_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoalhq/shoal/executor"
	"github.com/shoalhq/shoal/network"
)

// The pod network tests give each test a node: a network namespace the test creates
// (under t.TempDir(), not /var/run/netns) holding the bridge, with the CNI plugins run
// inside it (network.PodNetworkConfig.NodeNetNS). The test process and the shared
// containerd stay in the machine's namespace, whose network nothing here changes; the
// containers join their instances' namespaces by path, and the test talks to them from
// the node's namespace (network.InNetNS).

// podNode is a test node with a pod network.
type podNode struct {
	ns     string
	subnet netip.Prefix
	cfg    network.PodNetworkConfig
	pn     *network.PodNetwork
}

var podSubnet = netip.MustParsePrefix("10.244.3.0/24")

// newPodNode creates the node's namespace and its pod network; when the test ends it
// collects every attachment left and removes the namespace.
func newPodNode(t testing.TB) *podNode {
	t.Helper()
	env(t)
	n := &podNode{ns: filepath.Join(t.TempDir(), "node"), subnet: podSubnet}
	if err := network.CreateNetNS(n.ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := network.RemoveNetNS(n.ns); err != nil {
			t.Error(err)
		}
	})
	n.run(t, "ip", "link", "set", "lo", "up")
	suffix := make([]byte, 4)
	rand.Read(suffix)
	n.cfg = network.PodNetworkConfig{StateDir: t.TempDir(), Bridge: "stcnx" + hex.EncodeToString(suffix), NodeNetNS: n.ns}
	n.pn = n.open(t)
	t.Cleanup(func() {
		if err := n.pn.Collect(context.Background(), func(string) bool { return false }); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return n
}

// open makes a pod network on the node's state, as a restarted daemon does.
func (n *podNode) open(t testing.TB) *network.PodNetwork {
	t.Helper()
	pn, err := network.NewPodNetwork(n.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := pn.SetSubnet(n.subnet); err != nil {
		t.Fatal(err)
	}
	return pn
}

// runtime is a runtime on the shared containerd with the node's pod network; instances
// with hostNetwork join the node's namespace.
func (n *podNode) runtime(t testing.TB, pn *network.PodNetwork, opts ...executor.Option) *executor.Containerd {
	t.Helper()
	return newRuntime(t, append([]executor.Option{executor.WithPodNetwork(pn.ForExecutor()), executor.WithNetNS(n.ns)}, opts...)...)
}

func (n *podNode) run(t testing.TB, argv ...string) string {
	t.Helper()
	var out []byte
	err := network.InNetNS(n.ns, func() (err error) {
		out, err = exec.Command(argv[0], argv[1:]...).CombinedOutput()
		return err
	})
	if err != nil {
		t.Fatalf("%v in the node: %v\n%s", argv, err, out)
	}
	return string(out)
}

// get fetches url from the node's namespace, retrying while the server is starting.
func (n *podNode) get(t testing.TB, url string) string {
	t.Helper()
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, proto, addr string) (conn net.Conn, err error) {
			err = network.InNetNS(n.ns, func() (err error) {
				conn, err = (&net.Dialer{}).DialContext(ctx, proto, addr)
				return err
			})
			return conn, err
		},
	}}
	var last error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := client.Get(url)
		if err != nil {
			last = err
			continue
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			return string(b)
		}
		last = err
	}
	t.Fatalf("GET %s from the node: %v", url, last)
	return ""
}

// leftovers lists what the node still holds for instances: attachments, namespaces under
// the state directory, host ends of veths, IPAM reservations.
func (n *podNode) leftovers(t testing.TB, pn *network.PodNetwork) []string {
	t.Helper()
	var left []string
	atts, err := pn.Attachments()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range atts {
		left = append(left, "attachment "+a.ID)
	}
	for _, dir := range []string{"netns", "attachments", "ipam/shoal"} {
		entries, _ := os.ReadDir(filepath.Join(n.cfg.StateDir, dir))
		for _, e := range entries {
			if e.Name() != "lock" && !strings.HasPrefix(e.Name(), "last_reserved_ip") {
				left = append(left, dir+"/"+e.Name())
			}
		}
	}
	if veths := strings.TrimSpace(n.run(t, "ip", "-o", "link", "show", "type", "veth")); veths != "" {
		left = append(left, "veths: "+veths)
	}
	return left
}

// stopAll stops the instances ids and fails t when the node still holds anything for them.
func (n *podNode) stopAll(t testing.TB, rt *executor.Containerd, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if err := rt.Stop(context.Background(), id, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if left := n.leftovers(t, n.pn); len(left) != 0 {
		t.Errorf("after Stop, the node still holds %v", left)
	}
}

func helloInstance(id, image string, containers ...executor.ContainerSpec) executor.InstanceSpec {
	for i := range containers {
		containers[i].Image = image
	}
	return executor.InstanceSpec{ID: id, Namespace: "default", Workload: "hello", SpecHash: "h1",
		GracePeriod: 2 * time.Second, Containers: containers}
}

func envs(kv ...string) []executor.EnvVar {
	var out []executor.EnvVar
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, executor.EnvVar{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

// An instance's containers share its namespace and address: one reaches the other on
// localhost, the node reaches both at the address List gives; the instance has its own
// hostname and an /etc/hosts naming its address. After Stop, nothing of it is left.
func TestPodNetworkSharedByContainers(t *testing.T) {
	_, hello := env(t)
	n := newPodNode(t)
	rt := n.runtime(t, n.pn)
	ctx := context.Background()
	inst := helloInstance("shared-0", hello[0],
		executor.ContainerSpec{Name: "app", Env: envs("LISTEN", ":8080", "MESSAGE", "from app")},
		executor.ContainerSpec{Name: "side", Env: envs("LISTEN", ":9090", "UPSTREAM", "http://127.0.0.1:8080/")})
	if err := rt.Start(ctx, inst); err != nil {
		t.Fatal(err)
	}
	list, err := rt.List(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("List = %+v, %v", list, err)
	}
	addr := list[0].Addr
	if !n.subnet.Contains(addr) {
		t.Fatalf("List gives address %v, want one of %v", addr, n.subnet)
	}
	base := "http://" + addr.String()
	if got := n.get(t, base+":9090/"); !strings.Contains(got, "-> http://127.0.0.1:8080/: from app") {
		t.Errorf("side's answer through app on localhost: %q", got)
	}
	for _, c := range list[0].Containers {
		out, err := exec.Command("nsenter", "--target", fmt.Sprint(c.PID), "--uts", "hostname").CombinedOutput()
		if string(out) != "shared-0\n" || err != nil {
			t.Errorf("container %s: hostname %q, %v; want shared-0", c.Name, out, err)
		}
	}
	if got := n.get(t, base+":8080/file?path=/etc/hostname"); got != "shared-0\n" {
		t.Errorf("/etc/hostname = %q, want shared-0", got)
	}
	if got := n.get(t, base+":9090/file?path=/etc/hosts"); !strings.Contains(got, addr.String()+"\tshared-0\n") || !strings.Contains(got, "127.0.0.1\tlocalhost") {
		t.Errorf("/etc/hosts:\n%s", got)
	}
	n.stopAll(t, rt, inst.ID)
}

// Two instances of one image both listen on container port 8080: no conflict, each at its
// own address.
func TestPodNetworkSameContainerPort(t *testing.T) {
	_, hello := env(t)
	n := newPodNode(t)
	rt := n.runtime(t, n.pn)
	ctx := context.Background()
	for _, id := range []string{"twin-0", "twin-1"} {
		if err := rt.Start(ctx, helloInstance(id, hello[0], executor.ContainerSpec{Name: "app", Env: envs("LISTEN", ":8080", "MESSAGE", id)})); err != nil {
			t.Fatal(err)
		}
	}
	list, err := rt.List(ctx)
	if err != nil || len(list) != 2 || list[0].Addr == list[1].Addr {
		t.Fatalf("List = %+v, %v; want two instances at two addresses", list, err)
	}
	for _, inst := range list {
		if got := n.get(t, "http://"+inst.Addr.String()+":8080/"); !strings.HasPrefix(got, inst.ID+" ") {
			t.Errorf("%s at %v answers %q", inst.ID, inst.Addr, got)
		}
	}
	time.Sleep(300 * time.Millisecond) // a second listener failing to bind would have exited by now
	if list, _ = rt.List(ctx); !list[0].Running() || !list[1].Running() {
		t.Errorf("not both running: %+v", list)
	}
	n.stopAll(t, rt, list[0].ID, list[1].ID)
}

// A new runtime and pod network on the same state (an agent restart) list the same
// address without restarting anything; restarting a container keeps the namespace and
// address; CollectNetworks keeps what exists and removes what does not.
func TestPodNetworkAcrossRestarts(t *testing.T) {
	_, hello := env(t)
	n := newPodNode(t)
	rt := n.runtime(t, n.pn)
	ctx := context.Background()
	inst := helloInstance("kept-0", hello[0], executor.ContainerSpec{Name: "app", Env: envs("LISTEN", ":8080")})
	inst.Addr = netip.MustParseAddr("10.244.3.200") // as the agent chooses it
	if err := rt.Start(ctx, inst); err != nil {
		t.Fatal(err)
	}
	before, _ := rt.List(ctx)
	if before[0].Addr != inst.Addr {
		t.Errorf("List gives %v, the instance asked for %v", before[0].Addr, inst.Addr)
	}
	url := "http://" + before[0].Addr.String() + ":8080/"
	n.get(t, url)

	// A Start cut short after Attach left an attachment no container belongs to.
	if _, err := n.pn.Attach(ctx, "ghost-0", netip.Addr{}, nil); err != nil {
		t.Fatal(err)
	}

	pn := n.open(t)
	opts, _ := runtimeOptions.Load(rt)
	later := openRuntime(t, append(opts.([]executor.Option), executor.WithPodNetwork(pn.ForExecutor()))...)
	after, err := later.List(ctx)
	if err != nil || len(after) != 1 || after[0].Addr != before[0].Addr {
		t.Fatalf("after a restart List = %+v, %v; want address %v", after, err, before[0].Addr)
	}
	if b, a := before[0].Containers[0], after[0].Containers[0]; a.PID != b.PID || a.Status != executor.StatusRunning {
		t.Errorf("container after the restart: %+v, before %+v; want the same process running", a, b)
	}
	if err := later.CollectNetworks(ctx); err != nil {
		t.Fatal(err)
	}
	atts, _ := pn.Attachments()
	if len(atts) != 1 || atts[0].ID != "kept-0" || atts[0].Addr != before[0].Addr {
		t.Errorf("after CollectNetworks, attachments %+v; want kept-0 only", atts)
	}
	n.get(t, url)

	if err := later.Restart(ctx, inst.ID, "app"); err != nil {
		t.Fatal(err)
	}
	n.get(t, url)
	restarted, _ := later.List(ctx)
	if c := restarted[0].Containers[0]; restarted[0].Addr != before[0].Addr || c.PID == before[0].Containers[0].PID || c.Restarts != 1 {
		t.Errorf("after Restart: %+v", restarted[0])
	}
	if err := later.Stop(ctx, inst.ID, time.Second); err != nil {
		t.Fatal(err)
	}
	if left := n.leftovers(t, pn); len(left) != 0 {
		t.Errorf("after Stop, the node still holds %v", left)
	}
}

// A hostPort reaches the instance from the node; hostNetwork instances keep the node's
// network (and need the permission); a Start that fails leaves no attachment.
func TestPodNetworkHostPortsAndHostNetwork(t *testing.T) {
	_, hello := env(t)
	n := newPodNode(t)
	rt := n.runtime(t, n.pn, executor.WithPermissions(executor.Permissions{HostNetwork: true, HostPort: true}))
	ctx := context.Background()
	front := helloInstance("front-0", hello[0], executor.ContainerSpec{Name: "app", Env: envs("LISTEN", ":8080", "MESSAGE", "front"),
		Ports: []executor.Port{{Name: "http", Port: 8080, Protocol: "TCP", HostPort: 18080}}})
	if err := rt.Start(ctx, front); err != nil {
		t.Fatal(err)
	}
	gateway := n.subnet.Addr().Next()
	if got := n.get(t, "http://"+gateway.String()+":18080/"); !strings.HasPrefix(got, "front ") {
		t.Errorf("hostPort 18080 on the node answers %q", got)
	}

	host := helloInstance("host-0", hello[0], executor.ContainerSpec{Name: "app", Env: envs("LISTEN", "127.0.0.1:18181", "MESSAGE", "host")})
	host.HostNetwork = true
	if err := rt.Start(ctx, host); err != nil {
		t.Fatal(err)
	}
	if got := n.get(t, "http://127.0.0.1:18181/"); !strings.HasPrefix(got, "host ") {
		t.Errorf("hostNetwork instance on the node's loopback answers %q", got)
	}
	list, _ := rt.List(ctx)
	for _, inst := range list {
		if inst.ID == "host-0" && inst.Addr.IsValid() {
			t.Errorf("hostNetwork instance has a pod address %v", inst.Addr)
		}
	}
	if atts, _ := n.pn.Attachments(); len(atts) != 1 || atts[0].ID != "front-0" {
		t.Errorf("attachments %+v, want front-0 only", atts)
	}

	strict := n.runtime(t, n.pn)
	host.ID = "host-1"
	if err := strict.Start(ctx, host); !errors.Is(err, executor.ErrForbidden) {
		t.Errorf("hostNetwork without the permission: %v, want ErrForbidden", err)
	}
	broken := helloInstance("broken-0", hello[0], executor.ContainerSpec{Name: "app", Command: []string{"/no/such/binary"}})
	if err := rt.Start(ctx, broken); err == nil {
		t.Error("Start of a container whose binary does not exist succeeded")
	}
	if atts, _ := n.pn.Attachments(); len(atts) != 1 {
		t.Errorf("after a failed Start, attachments %+v; want front-0 only", atts)
	}
	n.stopAll(t, rt, "front-0", "host-0")
	if rules := n.run(t, "iptables-save", "-t", "nat"); strings.Contains(rules, "18080") {
		t.Errorf("hostPort rules left after Stop:\n%s", rules)
	}
}

// BenchmarkStart10PodNetwork starts 10 hello instances per op, as many at once as there
// are CPUs, with their own network namespaces (WithPodNetwork) and, in the same op, 10
// on the node's network, and reports the medians of both and their ratio. Stops are not
// timed.
//
//	go test ./executor -run '^$' -bench Start10PodNetwork -benchtime 5x -count 3
func BenchmarkStart10PodNetwork(b *testing.B) {
	_, hello := env(b)
	n := newPodNode(b)
	rt := n.runtime(b, n.pn, executor.WithPermissions(executor.Permissions{HostNetwork: true}))
	ctx := context.Background()
	if err := rt.EnsureImage(ctx, hello[0], executor.PullIfNotPresent); err != nil {
		b.Fatal(err)
	}
	parallel := runtime.NumCPU()
	startAll := func(i int, hostNetwork bool) time.Duration {
		ids := make([]string, benchContainers)
		start := time.Now()
		each(b, parallel, func(j int) error {
			ids[j] = fmt.Sprintf("bench-%v-%d-%d", hostNetwork, i, j)
			inst := helloInstance(ids[j], hello[0], executor.ContainerSpec{Name: "app", Env: envs("LISTEN", ":8080")})
			if hostNetwork {
				inst.Containers[0].Env = envs("LISTEN", "127.0.0.1:0")
				inst.HostNetwork = true
			}
			return rt.Start(ctx, inst)
		})
		took := time.Since(start)
		each(b, parallel, func(j int) error { return rt.Stop(ctx, ids[j], 0) })
		return took
	}
	var host, pod []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		host = append(host, startAll(i, true))
		pod = append(pod, startAll(i, false))
	}
	b.StopTimer()
	h, p := median(host), median(pod)
	b.ReportMetric(ms(h), "host-ms")
	b.ReportMetric(ms(p), "pod-ms")
	b.ReportMetric(float64(p)/float64(h), "pod/host")
}

// median of durations (sorted in place).
func median(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)/2]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
