package gossip

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// BenchmarkFailureDetection measures, with DefaultConfig and 3 nodes on
// loopback, the time from a node's Shutdown without Leave (as if SIGKILLed)
// until both survivors see it dead with its instances gone. Each iteration
// builds a fresh cluster; run it with -benchtime=5x. It reports the median as
// ms-to-dead (ns/op includes cluster start-up and means nothing).
func BenchmarkFailureDetection(b *testing.B) {
	var samples []time.Duration
	for range b.N {
		nodes := startCluster(b, 3, nil)
		if err := nodes[2].SetInstances(instances(5, "victim")); err != nil {
			b.Fatal(err)
		}
		for _, c := range nodes[:2] {
			waitFor(b, c, "node2's instances", func(v View) bool { return len(instancesOf(v, "node2")) == 5 })
		}
		start := time.Now()
		if err := nodes[2].Shutdown(); err != nil {
			b.Fatal(err)
		}
		took := waitDead(b, start, nodes[:2], "node2")
		samples = append(samples, max(took[0], took[1]))
		for _, c := range nodes {
			if err := c.Shutdown(); err != nil {
				b.Fatal(err)
			}
		}
	}
	slices.Sort(samples)
	b.Logf("detection times: %v", samples)
	b.ReportMetric(float64(samples[len(samples)/2].Milliseconds()), "ms-to-dead")
}

// BenchmarkPushPullState measures encoding and decoding the push/pull state
// of a cluster with 10 nodes of 100 instances each.
func BenchmarkPushPullState(b *testing.B) {
	s := newStore("n0", 1)
	s.setLocal(instances(100, "own"))
	for i := 1; i < 10; i++ {
		owner := newStore(string(rune('a'+i)), int64(i))
		s.observeEpoch(owner.self, int64(i))
		for _, d := range owner.setLocal(instances(100, "w")) {
			s.applyDelta(d)
		}
	}
	id := clusterCA.id("a")
	encode := func() []byte {
		states, _ := s.export()
		var blobs [][]byte
		for _, st := range states {
			blobs = append(blobs, seal(id, "a", encodeSnapshotBody(st)))
		}
		return encodeState([][]byte{id.DER}, blobs)
	}
	size := len(encode())
	b.ResetTimer()
	for range b.N {
		if _, err := decodeState(encode()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(size), "state-bytes")
}

// BenchmarkInstanceChangeLatency measures, with DefaultConfig and 3 nodes,
// the time from SetInstances flipping one instance's Ready flag (out of 20)
// until both peers see the change: the delay before DNS can drop a failed
// instance. It reports the median as ms-to-seen (ns/op includes a random
// pre-delay and means nothing).
func BenchmarkInstanceChangeLatency(b *testing.B) {
	nodes := startCluster(b, 3, nil)
	list := instances(20, "web")
	if err := nodes[0].SetInstances(list); err != nil {
		b.Fatal(err)
	}
	var samples []time.Duration
	for i := range b.N {
		list[7].Ready = i%2 == 1
		want := list[7].Ready
		// Changes happen at any phase of the gossip ticker; without this the
		// loop would lock onto it and always measure one full interval.
		time.Sleep(rand.N(nodes[0].cfg.GossipInterval))
		start := time.Now()
		if err := nodes[0].SetInstances(list); err != nil {
			b.Fatal(err)
		}
		var took time.Duration
		for _, c := range nodes[1:] {
			waitFor(b, c, "web-007 flipped", func(v View) bool {
				got := instancesOf(v, "node0")
				return len(got) == 20 && got[7].Ready == want
			})
			took = time.Since(start)
		}
		samples = append(samples, took)
	}
	slices.Sort(samples)
	b.ReportMetric(float64(samples[len(samples)/2].Microseconds())/1000, "ms-to-seen")
}

// maxState builds the largest push/pull message a receiver accepts: maxStateItems
// sealed deltas, each as large as a gossip packet allows, from the rogue's
// certificate, within maxStreamBytes.
func maxState(b *testing.B) (msg []byte, epoch int64) {
	id := clusterCA.id("rogue")
	epoch = time.Now().UnixNano()
	per := min(DefaultConfig().maxDeltaBytes(), maxStreamBytes/maxStateItems-8)
	var blobs [][]byte
	for i := range maxStateItems {
		inst := InstanceInfo{ID: fmt.Sprint("i-", i), Namespace: "default", Workload: "w", Running: true}
		for len(inst.Ports) < maxPorts && len(encodeDeltaBody(delta{Owner: "rogue", Epoch: epoch, Record: record{Counter: uint64(i + 1), Info: inst}}))+sealLen < per-8 {
			inst.Ports = append(inst.Ports, Port{Name: "p", Port: 1, Protocol: "TCP"})
		}
		if pad := per - 8 - sealLen - len(encodeDeltaBody(delta{Owner: "rogue", Epoch: epoch, Record: record{Counter: uint64(i + 1), Info: inst}})); pad > 0 {
			inst.SpecHash = strings.Repeat("h", pad)
		}
		blobs = append(blobs, seal(id, "rogue", encodeDeltaBody(delta{Owner: "rogue", Epoch: epoch, Record: record{Counter: uint64(i + 1), Info: inst}})))
	}
	return encodeState([][]byte{id.DER}, blobs), epoch
}

// BenchmarkDecodeMaxState decodes the largest push/pull message accepted
// (about 8 MiB of sealed deltas); with -benchmem, B/op over the message size
// is the memory cost per byte received.
func BenchmarkDecodeMaxState(b *testing.B) {
	msg, _ := maxState(b)
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	for range b.N {
		if _, err := decodeState(msg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMergeMaxState is what a node spends on that message: decoding,
// checking 8,192 signatures, and storing the records (at most
// maxRecordsPerOwner of them). Each iteration uses a fresh node.
func BenchmarkMergeMaxState(b *testing.B) {
	msg, epoch := maxState(b)
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		c := startNode(b, nodeConfig(fmt.Sprint("bench-", b.N)))
		c.mu.Lock()
		c.store.observeEpoch("rogue", epoch)
		c.mu.Unlock()
		b.StartTimer()
		(*delegate)(c).MergeRemoteState(msg, false)
		b.StopTimer()
		c.Shutdown()
		b.StartTimer()
	}
}

// BenchmarkDecodeMaxDelta decodes and verifies the largest delta a packet can carry.
func BenchmarkDecodeMaxDelta(b *testing.B) {
	id := clusterCA.id("rogue")
	v := clusterCA.trusts()
	tr, err := newTrust(v, id, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	inst := InstanceInfo{ID: "i", Namespace: "default", Workload: "w", Running: true}
	for len(inst.Ports) < maxPorts && len(encodeDeltaBody(delta{Owner: "rogue", Record: record{Info: inst}}))+sealLen < DefaultConfig().maxDeltaBytes()-8 {
		inst.Ports = append(inst.Ports, Port{Name: "p", Port: 1, Protocol: "TCP"})
	}
	inst.SpecHash = strings.Repeat("h", DefaultConfig().maxDeltaBytes()-16-sealLen-len(encodeDeltaBody(delta{Owner: "rogue", Record: record{Info: inst}})))
	msg := seal(id, "rogue", encodeDeltaBody(delta{Owner: "rogue", Epoch: 1, Record: record{Counter: 1, Info: inst}}))
	b.SetBytes(int64(len(msg)))
	now := time.Now()
	b.ResetTimer()
	for range b.N {
		d, err := decodeDelta(msg)
		if err != nil {
			b.Fatal(err)
		}
		if err := tr.verify(d.Owner, d.seal, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkViewAfterOneChange is the view handed out after one instance of another node
// turned unready or ready again, with 100,000 instances on 5,000 owners: what
// Cluster.Snapshot costs after a delta (the members' list is cached apart).
func BenchmarkViewAfterOneChange(b *testing.B) {
	const owners, perOwner = 5000, 20
	s := newStore("n0", 1)
	for i := range owners {
		name := fmt.Sprint("node-", i)
		s.observeEpoch(name, 1)
		for j := range perOwner {
			s.applyDelta(delta{Owner: name, Epoch: 1, Record: record{Counter: uint64(j + 1),
				Info: InstanceInfo{ID: fmt.Sprint("i", j), Namespace: "default", Workload: fmt.Sprint("app-", (i*perOwner+j)%2000), Node: name, Ready: true}}})
		}
	}
	all := func(string) bool { return true }
	s.view(all)
	b.ReportAllocs()
	counter := uint64(perOwner)
	for b.Loop() {
		counter++
		s.applyDelta(delta{Owner: "node-2500", Epoch: 1, Record: record{Counter: counter,
			Info: InstanceInfo{ID: "i7", Namespace: "default", Workload: "app-7", Node: "node-2500", Ready: counter%2 == 0}}})
		if v := s.view(all); len(v) != owners {
			b.Fatalf("%d owners", len(v))
		}
	}
}
