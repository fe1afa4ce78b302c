package gossip

import (
	"math/rand/v2"
	"slices"
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
