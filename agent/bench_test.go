package agent

import (
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/shoalhq/shoal/executor"
	"github.com/shoalhq/shoal/gossip"
	"github.com/shoalhq/shoal/planner"
	"github.com/shoalhq/shoal/source"
	"github.com/shoalhq/shoal/spec"
)

// The core at scale: 100,000 desired replicas (2,000 Deployments of 50) on 5,000 nodes of
// 16 cores and 64 GiB, every replica running and ready where the plan put it, this node
// running its share. Each benchmark measures one event: Step, Ready and Advance.
const (
	benchWorkloads = 2000
	benchReplicas  = 50
	benchNodes     = 5000
)

// benchManifest is one of the benchmark's Deployments, with CPU and memory requests.
func benchManifest(i int, image string) []byte {
	return fmt.Appendf(nil, `apiVersion: apps/v1
kind: Deployment
metadata: {name: app-%[1]d}
spec:
  replicas: %[2]d
  selector: {matchLabels: {app: app-%[1]d}}
  template:
    metadata: {labels: {app: app-%[1]d}}
    spec:
      containers:
      - name: main
        image: %[3]s
        resources: {requests: {cpu: %[4]dm, memory: 256Mi}}
`, i, benchReplicas, image, 100+i%5*100)
}

// benchRevision loads the benchmark's Deployments as the Git source does, app-7 with image7.
func benchRevision(b *testing.B, commit, image7 string) *spec.Desired {
	b.Helper()
	files := fstest.MapFS{}
	for i := range benchWorkloads {
		image := "registry.local/app:1"
		if i == 7 {
			image = image7
		}
		files["app-"+strconv.Itoa(i)+".yaml"] = &fstest.MapFile{Data: benchManifest(i, image)}
	}
	set, diags := spec.Load(files, spec.LoadOptions{})
	if diags.HasErrors() {
		b.Fatal(diags.Error())
	}
	return &spec.Desired{Revision: spec.Revision{Commit: commit}, Objects: set}
}

type benchCluster struct {
	c    *core
	now  time.Time
	revs [2]*spec.Desired // the second changes one Deployment's image
	// views are the cluster with one instance of another node ready, then not.
	views [2]gossip.View
	local []string // this node's instance IDs
}

func newBenchCluster(b *testing.B) *benchCluster {
	b.Helper()
	bc := &benchCluster{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	for i, image7 := range []string{"registry.local/app:1", "registry.local/app:2"} {
		bc.revs[i] = benchRevision(b, strconv.Itoa(i+1)+"000000000000000000000000000000000000000", image7)
	}

	nodes := make([]gossip.NodeInfo, benchNodes)
	pnodes := make([]planner.Node, benchNodes)
	for i := range nodes {
		name := "node-" + strconv.Itoa(i)
		labels := map[string]string{planner.LabelHostname: name, planner.LabelZone: "zone-" + strconv.Itoa(i%10)}
		nodes[i] = gossip.NodeInfo{Name: name, Addr: "10.0." + strconv.Itoa(i/250) + "." + strconv.Itoa(i%250), Labels: labels,
			MilliCPU: 16000, MemoryBytes: 64 << 30, MaxInstances: planner.DefaultMaxInstances, Alive: true}
		pnodes[i] = planner.Node{Name: name, Labels: labels, Allocatable: planner.Resources{MilliCPU: 16000, MemoryBytes: 64 << 30}, Alive: true}
	}
	self := nodes[0]
	placement := planner.Plan(*bc.revs[0], planner.View{Nodes: pnodes})
	if len(placement.Assignments) != benchWorkloads*benchReplicas {
		b.Fatalf("placed %d replicas", len(placement.Assignments))
	}
	var instances []gossip.InstanceInfo
	var states []executor.InstanceState
	for _, as := range placement.Assignments {
		if as.Node == self.Name {
			states = append(states, executor.InstanceState{
				ID: as.InstanceID, Namespace: as.Namespace, Workload: as.Workload, SpecHash: as.SpecHash,
				Revision: bc.revs[0].Revision.Commit, Node: self.Name, GracePeriod: 30 * time.Second,
				Containers: []executor.ContainerState{{Name: "main", Image: "registry.local/app:1", Status: executor.StatusRunning, PID: 1}},
			})
			bc.local = append(bc.local, as.InstanceID)
			continue
		}
		instances = append(instances, gossip.InstanceInfo{
			ID: as.InstanceID, Namespace: as.Namespace, Workload: as.Workload, Node: as.Node, SpecHash: as.SpecHash,
			Ready: true, Running: true, Addr: "10.0.0.1",
		})
	}
	// The second view is what gossip hands out after one instance changed: only its
	// owner's list is new, every other owner's is shared with the first view.
	bc.views[0] = gossip.NewView(nodes, instances)
	owners := slices.Clone(bc.views[0].Owners)
	o := &owners[len(owners)/2]
	o.Instances = slices.Clone(o.Instances)
	o.Instances[len(o.Instances)/2].Ready = false
	bc.views[1] = gossip.View{Nodes: bc.views[0].Nodes, Owners: owners}

	cfg := DefaultConfig(self.Name)
	cfg.Labels = self.Labels
	cfg.Allocatable = planner.Resources{MilliCPU: 16000, MemoryBytes: 64 << 30}
	cfg.Logger = slog.New(slog.DiscardHandler)
	bc.c = newCore(cfg, true, DNSConfig{})
	bc.step(revisionEvent{source.Event{Revision: bc.revs[0].Revision, Desired: bc.revs[0]}})
	bc.step(listingEvent{states: states, began: bc.now})
	bc.step(viewEvent{bc.views[0]})
	if rd := bc.c.Ready(); len(rd.starts)+len(rd.stops) != 0 {
		b.Fatalf("the settled cluster starts %d and stops %d", len(rd.starts), len(rd.stops))
	}
	bc.c.Advance()
	return bc
}

func (bc *benchCluster) step(ev event) {
	bc.now = bc.now.Add(time.Millisecond)
	bc.c.Step(ev, bc.now)
}

// processCPU is the CPU time this process has used, user and system: unlike wall time,
// it does not grow when other work shares the machine.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loop runs event i of a benchmark per iteration and reports the process's CPU time per
// event (the garbage collection the events cause included) beside the wall time.
func (bc *benchCluster) loop(b *testing.B, event func(i int)) {
	b.ReportAllocs()
	runtime.GC() // the set-up's garbage is not the events' cost
	cpu := processCPU(b)
	i := 0
	for b.Loop() {
		i++
		event(i)
	}
	b.ReportMetric(float64(processCPU(b)-cpu)/float64(b.N)/1e6, "cpu-ms/op")
}

func (bc *benchCluster) cycle(ev event) ready {
	bc.step(ev)
	rd := bc.c.Ready()
	bc.c.Advance()
	return rd
}

// BenchmarkCoreProbeVerdict is one readiness verdict on an instance of this node.
func BenchmarkCoreProbeVerdict(b *testing.B) {
	bc := newBenchCluster(b)
	id := bc.local[0]
	bc.loop(b, func(i int) {
		if rd := bc.cycle(probeEvent{executor.ProbeResult{InstanceID: id, Container: "main", Kind: executor.ProbeReadiness, Healthy: i%2 == 0}}); rd.planInputs != nil {
			b.Fatal("a probe verdict planned again")
		}
	})
}

// BenchmarkCoreGossipInstanceChange is one instance of another node turning unready or
// ready again in the gossip view.
func BenchmarkCoreGossipInstanceChange(b *testing.B) {
	bc := newBenchCluster(b)
	bc.loop(b, func(i int) {
		if rd := bc.cycle(viewEvent{bc.views[i%2]}); rd.planInputs != nil {
			b.Fatal("a readiness change elsewhere planned again")
		}
	})
}

// BenchmarkCoreRevisionOneDeployment is a new revision that changes the image of one
// Deployment of the 2,000, then back: each loaded as the Git source loads it (decoding and
// hashing happen there, in the source's goroutine, not in the loop).
func BenchmarkCoreRevisionOneDeployment(b *testing.B) {
	bc := newBenchCluster(b)
	bc.loop(b, func(i int) {
		rev := bc.revs[i%2]
		if rd := bc.cycle(revisionEvent{source.Event{Revision: rev.Revision, Desired: rev}}); rd.markApplying == "" {
			b.Fatal("the revision was not taken")
		}
	})
}
