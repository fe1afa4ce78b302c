package gossip

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shoalhq/shoal/internal/testsupport"
)

var verboseGossip = flag.Bool("gossip.log", false, "log gossip and memberlist debug output to stderr")

// TestMain fails the run if goroutines outlive the tests. memberlist's
// Shutdown does not wait for a probe or push/pull already in flight; those end
// within ProbeInterval × 8 (Lifeguard's awareness multiplier) or TCPTimeout,
// so keep looking for that long before calling what is left a leak, instead
// of ignoring any memberlist function.
func TestMain(m *testing.M) {
	code := m.Run()
	removeTestCAs()
	if code == 0 {
		var err error
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if err = goleak.Find(); err == nil || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "goleak: goroutines outlived the tests: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// nodeConfig is DefaultConfig on loopback with a kernel-chosen port.
func nodeConfig(name string, seeds ...string) Config {
	cfg := DefaultConfig()
	cfg.NodeName = name
	cfg.BindAddr = "127.0.0.1"
	cfg.BindPort = 0
	cfg.Seeds = seeds
	cfg.SecretKeys = [][]byte{testKey}
	cfg.Identity = clusterCA.id(name)
	cfg.Verifier = clusterCA.trusts()
	cfg.Meta = Meta{Labels: map[string]string{"kubernetes.io/hostname": name}}
	cfg.Logger = nil
	if *verboseGossip {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return cfg
}

func startNode(t testing.TB, cfg Config) *Cluster {
	t.Helper()
	c, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start %s: %v", cfg.NodeName, err)
	}
	t.Cleanup(func() {
		if err := c.Shutdown(); err != nil {
			t.Errorf("shutdown %s: %v", cfg.NodeName, err)
		}
	})
	return c
}

// startCluster starts n nodes, each seeded with the first, and waits until
// all see all.
func startCluster(t testing.TB, n int, configure func(*Config)) []*Cluster {
	t.Helper()
	var nodes []*Cluster
	for i := range n {
		var seeds []string
		if i > 0 {
			seeds = []string{nodes[0].Addr()}
		}
		cfg := nodeConfig(fmt.Sprint("node", i), seeds...)
		if configure != nil {
			configure(&cfg)
		}
		nodes = append(nodes, startNode(t, cfg))
	}
	for _, c := range nodes {
		waitFor(t, c, fmt.Sprintf("%d alive members", n), func(v View) bool { return aliveCount(v) == n })
	}
	return nodes
}

// waitTimeout bounds every wait: generous, because the test machine is
// shared, and far below go test's own timeout so a failure names its cause.
const waitTimeout = 30 * time.Second

// waitFor waits, reading Changes, until cond holds for c's Snapshot.
func waitFor(t testing.TB, c *Cluster, what string, cond func(View) bool) View {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		v := c.Snapshot()
		if cond(v) {
			return v
		}
		select {
		case <-c.Changes():
		case <-time.After(200 * time.Millisecond): // Changes coalesces; re-check anyway
		case <-deadline:
			t.Fatalf("%s: waiting for %s: timed out after %v; view: %s", c.cfg.NodeName, what, waitTimeout, describe(v))
		}
	}
}

func describe(v View) string {
	var b strings.Builder
	for _, n := range v.Nodes {
		fmt.Fprintf(&b, "%s(alive=%v) ", n.Name, n.Alive)
	}
	fmt.Fprintf(&b, "| %d instances", len(v.Instances()))
	return b.String()
}

func aliveCount(v View) int {
	n := 0
	for _, node := range v.Nodes {
		if node.Alive {
			n++
		}
	}
	return n
}

func node(v View, name string) (NodeInfo, bool) {
	i := slices.IndexFunc(v.Nodes, func(n NodeInfo) bool { return n.Name == name })
	if i < 0 {
		return NodeInfo{}, false
	}
	return v.Nodes[i], true
}

func instancesOf(v View, nodeName string) []InstanceInfo {
	var out []InstanceInfo
	for _, inst := range v.Instances() {
		if inst.Node == nodeName {
			out = append(out, inst)
		}
	}
	return out
}

func instances(n int, prefix string) []InstanceInfo {
	out := make([]InstanceInfo, n)
	for i := range out {
		out[i] = InstanceInfo{
			ID: fmt.Sprintf("%s-%03d", prefix, i), Namespace: "default", Workload: prefix,
			SpecHash: "5eed", Running: true, Ready: true, Addr: fmt.Sprintf("10.0.%d.%d", i/250, i%250+1),
			Ports: []Port{{Name: "http", Port: 8080, Protocol: "TCP"}},
		}
	}
	return out
}

func TestClusterFormsInAnyOrderAndSharesMeta(t *testing.T) {
	const n = 4
	var seeds []string
	for range n {
		seeds = append(seeds, testsupport.FreeAddr(t))
	}
	meta := func(i int) Meta {
		return Meta{
			Labels:   map[string]string{"kubernetes.io/hostname": fmt.Sprint("node", i), "topology.kubernetes.io/zone": fmt.Sprint("z", i%2)},
			MilliCPU: int64(1000 * (i + 1)), MemoryBytes: int64(i+1) << 30,
			Revision: "c0ffee", APIAddr: fmt.Sprintf("127.0.0.1:%d", 7000+i), DNSAddr: fmt.Sprintf("127.0.0.1:%d", 5300+i),
		}
	}

	// The last node starts first, alone, and must keep retrying its seeds.
	nodes := make([]*Cluster, n)
	for i := n - 1; i >= 0; i-- {
		cfg := nodeConfig(fmt.Sprint("node", i), seeds...) // every node lists every seed, itself included
		_, port, _ := net.SplitHostPort(seeds[i])
		fmt.Sscan(port, &cfg.BindPort)
		cfg.Meta = meta(i)
		nodes[i] = startNode(t, cfg)
		if i == n-1 {
			time.Sleep(3 * cfg.JoinBackoffMin) // let it fail a few joins first
		}
	}

	for _, c := range nodes {
		v := waitFor(t, c, "all members alive", func(v View) bool { return aliveCount(v) == n })
		for i := range n {
			got, _ := node(v, fmt.Sprint("node", i))
			want := nodeInfo(fmt.Sprint("node", i), "127.0.0.1", meta(i), true)
			if !equalNode(got, want) {
				t.Fatalf("%s sees %+v, want %+v", c.cfg.NodeName, got, want)
			}
		}
	}

	// A new revision is re-published and seen everywhere.
	updated := meta(0)
	updated.Revision = "beef01"
	updated.Labels["role"] = "edge"
	if err := nodes[0].UpdateNode(updated); err != nil {
		t.Fatal(err)
	}
	for _, c := range nodes {
		waitFor(t, c, "node0's new revision and label", func(v View) bool {
			n0, _ := node(v, "node0")
			return n0.Revision == "beef01" && n0.Labels["role"] == "edge"
		})
	}
}

func equalNode(a, b NodeInfo) bool {
	return a.Name == b.Name && a.Addr == b.Addr && a.Alive == b.Alive && a.MilliCPU == b.MilliCPU &&
		a.MemoryBytes == b.MemoryBytes && a.Revision == b.Revision && a.APIAddr == b.APIAddr &&
		a.DNSAddr == b.DNSAddr && fmt.Sprint(a.Labels) == fmt.Sprint(b.Labels)
}

func TestUpdateNodeRejectsLargeMeta(t *testing.T) {
	cfg := nodeConfig("solo")
	c := startNode(t, cfg)
	err := c.UpdateNode(Meta{Labels: map[string]string{"big": strings.Repeat("x", 600)}})
	if !errors.Is(err, ErrMetaTooLarge) {
		t.Fatalf("got %v, want ErrMetaTooLarge", err)
	}
	self, _ := node(c.Snapshot(), "solo")
	if self.Labels["kubernetes.io/hostname"] != "solo" || self.Labels["big"] != "" {
		t.Fatalf("rejected meta changed the published one: %+v", self)
	}
}

func TestInstancesPropagate(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	web := instances(3, "web")
	if err := nodes[0].SetInstances(web); err != nil {
		t.Fatal(err)
	}
	if err := nodes[1].SetInstances(instances(2, "db")); err != nil {
		t.Fatal(err)
	}
	for _, c := range nodes {
		waitFor(t, c, "5 instances", func(v View) bool {
			return len(instancesOf(v, "node0")) == 3 && len(instancesOf(v, "node1")) == 2
		})
	}

	// Change one, delete one.
	web[0].Ready = false
	web[0].SpecHash = "new"
	if err := nodes[0].SetInstances(web[:2]); err != nil {
		t.Fatal(err)
	}
	for _, c := range nodes {
		v := waitFor(t, c, "web-000 not ready and web-002 gone", func(v View) bool {
			got := instancesOf(v, "node0")
			return len(got) == 2 && got[0].ID == "web-000" && !got[0].Ready && got[0].SpecHash == "new"
		})
		got := instancesOf(v, "node0")[1]
		want := web[1]
		want.Node = "node0"
		if !equalInstance(got, want) {
			t.Fatalf("%s sees %+v, want %+v", c.cfg.NodeName, got, want)
		}
	}
}

func TestSetInstancesRejectsInvalid(t *testing.T) {
	c := startNode(t, nodeConfig("solo"))
	bigPorts, manyPorts := instances(1, "big"), instances(1, "many")
	for i := range 60 {
		bigPorts[0].Ports = append(bigPorts[0].Ports, Port{Name: fmt.Sprint("a-rather-long-port-name-", i), Port: int32(i), Protocol: "TCP"})
	}
	for i := range maxPorts + 1 {
		manyPorts[0].Ports = append(manyPorts[0].Ports, Port{Name: "p", Port: int32(i), Protocol: "TCP"})
	}
	tests := []struct {
		name string
		list []InstanceInfo
	}{
		{"empty ID", []InstanceInfo{{Namespace: "x"}}},
		{"duplicate ID", append(instances(2, "a"), instances(1, "a")...)},
		{"does not fit a packet", bigPorts},
		{"too many ports", manyPorts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := c.SetInstances(tt.list); !errors.Is(err, ErrInvalidInstance) {
				t.Fatalf("got %v, want ErrInvalidInstance", err)
			}
			if got := c.Snapshot().Instances(); len(got) != 0 {
				t.Fatalf("rejected list was applied: %+v", got)
			}
		})
	}
}

// TestLargeListsConverge: 200 instances on one node reach a node that joins
// later (in its join push/pull) and a third node that joins through the
// second only.
func TestLargeListsConverge(t *testing.T) {
	a := startNode(t, nodeConfig("a"))
	if err := a.SetInstances(instances(200, "bulk")); err != nil {
		t.Fatal(err)
	}
	b := startNode(t, nodeConfig("b", a.Addr()))
	c := startNode(t, nodeConfig("c", b.Addr()))
	for _, n := range []*Cluster{a, b, c} {
		v := waitFor(t, n, "200 instances of a", func(v View) bool { return len(instancesOf(v, "a")) == 200 })
		if got, want := v.Instances()[199], instances(200, "bulk")[199]; got.ID != want.ID || got.Addr != want.Addr || got.Node != "a" {
			t.Fatalf("%s: last instance %+v, want %+v on a", n.cfg.NodeName, got, want)
		}
	}
	// And a wholesale change of the big list converges too.
	start := time.Now()
	if err := a.SetInstances(instances(150, "bulk2")); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*Cluster{b, c} {
		waitFor(t, n, "150 new instances of a", func(v View) bool {
			got := instancesOf(v, "a")
			return len(got) == 150 && !slices.ContainsFunc(got, func(i InstanceInfo) bool { return i.Workload == "bulk" })
		})
	}
	t.Logf("200 deletes + 150 upserts converged on b and c after %v", time.Since(start))
}

// waitDead returns how long each observer took, from start, to see name
// dead (Alive=false) with no instances left.
func waitDead(t testing.TB, start time.Time, observers []*Cluster, name string) []time.Duration {
	t.Helper()
	took := make([]time.Duration, len(observers))
	deadline := time.After(waitTimeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for pending := len(observers); pending > 0; {
		for i, c := range observers {
			if took[i] != 0 {
				continue
			}
			v := c.Snapshot()
			if n, ok := node(v, name); ok && !n.Alive && len(instancesOf(v, name)) == 0 {
				took[i] = time.Since(start)
				pending--
			}
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("%s not seen dead within %v (seen after %v)", name, waitTimeout, took)
		}
	}
	return took
}

func TestKilledNodeDeclaredDead(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	if err := nodes[2].SetInstances(instances(5, "victim")); err != nil {
		t.Fatal(err)
	}
	for _, c := range nodes[:2] {
		waitFor(t, c, "node2's instances", func(v View) bool { return len(instancesOf(v, "node2")) == 5 })
	}
	start := time.Now()
	if err := nodes[2].Shutdown(); err != nil { // no Leave: as if SIGKILLed
		t.Fatal(err)
	}
	took := waitDead(t, start, nodes[:2], "node2")
	t.Logf("DefaultConfig, 3 nodes: node2 seen dead after %v and %v", took[0], took[1])
	if got := aliveCount(nodes[0].Snapshot()); got != 2 {
		t.Fatalf("alive members %d, want 2", got)
	}
}

func TestLeaveSeenBeforeFailureDetection(t *testing.T) {
	// Suspicion lasts at least 20 × 500ms = 10 s, so seeing the node gone
	// sooner proves the leave message, not failure detection, removed it.
	nodes := startCluster(t, 3, func(c *Config) { c.SuspicionMult = 20 })
	if err := nodes[2].SetInstances(instances(3, "leaver")); err != nil {
		t.Fatal(err)
	}
	for _, c := range nodes[:2] {
		waitFor(t, c, "node2's instances", func(v View) bool { return len(instancesOf(v, "node2")) == 3 })
	}
	start := time.Now()
	if err := nodes[2].Leave(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	leaveReturned := time.Since(start)
	if err := nodes[2].Shutdown(); err != nil {
		t.Fatal(err)
	}
	took := waitDead(t, start, nodes[:2], "node2")
	t.Logf("graceful leave: Leave returned after %v; peers saw node2 gone after %v and %v", leaveReturned, took[0], took[1])
	if limit := 10 * time.Second; took[0] >= limit || took[1] >= limit {
		t.Fatalf("leave seen after %v, not before failure detection could (%v)", took, limit)
	}
}

func TestRestartedNodeReplacesItsInstances(t *testing.T) {
	nodes := startCluster(t, 2, nil)
	port := testsupport.FreePort(t)
	cfg := nodeConfig("phoenix", nodes[0].Addr())
	cfg.BindPort = port
	old, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { old.Shutdown() }) // a no-op once shut down below
	if err := old.SetInstances(instances(3, "old")); err != nil {
		t.Fatal(err)
	}
	for _, c := range nodes {
		waitFor(t, c, "old run's instances", func(v View) bool { return len(instancesOf(v, "phoenix")) == 3 })
	}

	// Restart at once, same name and address, before failure detection.
	if err := old.Shutdown(); err != nil {
		t.Fatal(err)
	}
	restarted := startNode(t, cfg)
	if err := restarted.SetInstances(instances(1, "new")); err != nil {
		t.Fatal(err)
	}
	for _, c := range nodes {
		waitFor(t, c, "only the new run's instance", func(v View) bool {
			got := instancesOf(v, "phoenix")
			n, _ := node(v, "phoenix")
			return n.Alive && len(got) == 1 && got[0].Workload == "new"
		})
	}
}

// recorder is a slog.Handler that keeps every record, for asserting logs.
type recorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec.Clone())
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

func (r *recorder) records() []slog.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.recs)
}

func (r *recorder) count(msg string) int {
	n := 0
	for _, rec := range r.records() {
		if rec.Message == msg {
			n++
		}
	}
	return n
}

func TestWrongKeyCannotJoin(t *testing.T) {
	nodes := startCluster(t, 2, nil)

	wrong := nodeConfig("wrong-key", nodes[0].Addr())
	wrong.SecretKeys = [][]byte{otherKey}
	plain := nodeConfig("no-key", nodes[0].Addr())
	plain.SecretKeys = nil
	plain.AllowPlaintext = true

	for _, cfg := range []Config{wrong, plain} {
		t.Run(cfg.NodeName, func(t *testing.T) {
			var logs recorder
			cfg.Logger = slog.New(&logs)
			intruder := startNode(t, cfg)
			deadline := time.Now().Add(waitTimeout)
			for logs.count("gossip: join failed, retrying") < 3 {
				if time.Now().After(deadline) {
					t.Fatalf("no failed join attempts logged")
				}
				time.Sleep(50 * time.Millisecond)
			}
			for _, c := range append(nodes, intruder) {
				v := c.Snapshot()
				want := 2
				if c == intruder {
					want = 1
				}
				if len(v.Nodes) != want {
					t.Fatalf("%s sees %s; the intruder must stay apart", c.cfg.NodeName, describe(v))
				}
			}
		})
	}
}

func TestKeyRotationMixedPrimaries(t *testing.T) {
	// Mid-rotation (pass 2): some nodes send with the new key, some with the
	// old, all accept both.
	primaries := [][][]byte{{testKey, otherKey}, {otherKey, testKey}, {otherKey, testKey}}
	i := 0
	nodes := startCluster(t, 3, func(c *Config) { c.SecretKeys = primaries[i]; i++ })
	if err := nodes[0].SetInstances(instances(2, "rot")); err != nil {
		t.Fatal(err)
	}
	if err := nodes[2].SetInstances(instances(1, "tor")); err != nil {
		t.Fatal(err)
	}
	for _, c := range nodes {
		waitFor(t, c, "instances from both key generations", func(v View) bool {
			return len(instancesOf(v, "node0")) == 2 && len(instancesOf(v, "node2")) == 1
		})
	}
	// Pass 3: a node holding only the new key joins a node that sends with it.
	newOnly := nodeConfig("new-only", nodes[1].Addr())
	newOnly.SecretKeys = [][]byte{otherKey}
	c := startNode(t, newOnly)
	waitFor(t, c, "node1 seen", func(v View) bool { n, ok := node(v, "node1"); return ok && n.Alive })
}

// TestDelegatesDoNotBlock floods the delegates of a node whose Changes
// nobody reads and checks they keep returning and applying.
func TestDelegatesDoNotBlock(t *testing.T) {
	nodes := startCluster(t, 2, nil)
	a, b := nodes[0], nodes[1]
	// Nobody reads b.Changes() from here on.
	for round := range 50 {
		list := instances(10, "churn")
		for i := range list {
			list[i].SpecHash = fmt.Sprint(round)
		}
		if err := a.SetInstances(list); err != nil {
			t.Fatal(err)
		}
	}

	d := (*delegate)(b)
	done := make(chan struct{})
	go func() {
		defer close(done)
		msg := seal(a.cfg.Identity, "node0", encodeDeltaBody(delta{Owner: "node0", Epoch: a.epoch, Record: record{Counter: 1 << 40, Info: InstanceInfo{ID: "direct", Node: "node0"}}}))
		state := d.LocalState(false)
		for range 1000 {
			d.NotifyMsg(msg)
			d.MergeRemoteState(state, false)
			d.NotifyUpdate(a.ml.LocalNode())
			d.GetBroadcasts(2, 1400)
		}
	}()
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatal("delegate calls blocked with nobody reading Changes")
	}

	deadline := time.Now().Add(waitTimeout)
	for {
		got := instancesOf(b.Snapshot(), "node0")
		if len(got) == 11 && slices.ContainsFunc(got, func(i InstanceInfo) bool { return i.SpecHash == "49" }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b never caught up without a Changes reader: %+v", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestStartRejects(t *testing.T) {
	cfg := nodeConfig("n")
	cfg.SecretKeys = nil
	if _, err := Start(context.Background(), cfg); !errors.Is(err, ErrNoKey) {
		t.Fatalf("no key: got %v, want ErrNoKey", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Start(ctx, nodeConfig("n")); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ctx: got %v", err)
	}
}

func TestShutdownTwiceAndLeaveAfter(t *testing.T) {
	c, err := Start(context.Background(), nodeConfig("n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := c.Shutdown(); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	if err := c.Leave(time.Second); !errors.Is(err, ErrShutdown) {
		t.Fatalf("Leave after Shutdown: got %v, want ErrShutdown", err)
	}
}
