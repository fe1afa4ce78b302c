package network

import (
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkRoutesSync measures one Sync with 1,000 peers programmed, in a namespace the
// benchmark creates (an uplink at 172.16.0.1/16, one end of a veth pair; cluster 10.0.0.0/8
// with a /24 per node): "1-changed" takes one peer out or puts it back (alternately),
// "unchanged" resends the same list. Besides wall time it reports CPU time per Sync
// (cpu-ns/op). Run with: go test -run '^$' -bench BenchmarkRoutesSync ./network/
func BenchmarkRoutesSync(b *testing.B) {
	const peers = 1000
	for _, mode := range []RouteMode{RouteModeHostGW, RouteModeVXLAN} {
		b.Run(string(mode), func(b *testing.B) {
			lab := newRoutesLab(b)
			path, h := lab.lone("bench")
			r, err := NewRoutes(RoutesConfig{
				Mode:        mode,
				LocalAddr:   netip.MustParseAddr("172.16.0.1"),
				LocalSubnet: netip.MustParsePrefix("10.0.0.0/24"),
				ClusterCIDR: netip.MustParsePrefix("10.0.0.0/8"),
				NetNS:       path,
				Logger:      slog.New(slog.DiscardHandler),
			})
			lab.must(err)
			b.Cleanup(func() { r.Close() })
			all := make([]Peer, peers)
			for i := range all {
				all[i] = Peer{
					Node:   "node" + netip.AddrFrom4([4]byte{0, 0, byte(i >> 8), byte(i)}).String(),
					Addr:   netip.AddrFrom4([4]byte{172, 16, byte(1 + i/250), byte(1 + i%250)}),
					Subnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(1 + i>>8), byte(i), 0}), 24),
				}
			}
			lab.must(r.Sync(all))
			if got := len(ownedRoutes(b, h)); got != peers {
				b.Fatalf("%d routes programmed, want %d", got, peers)
			}

			b.Run("1-changed", func(b *testing.B) {
				lists := [2][]Peer{all[1:], all}
				i := 0
				defer reportCPU(b)()
				for b.Loop() {
					if err := r.Sync(lists[i%2]); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
			b.Run("unchanged", func(b *testing.B) {
				defer reportCPU(b)()
				for b.Loop() {
					if err := r.Sync(all); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// reportCPU reports the process's CPU time (user and system, so the kernel's share of netlink
// calls counts) per operation as cpu-ns/op, a figure that other load on the machine disturbs
// less than wall time. Call the function it returns when the loop ends.
func reportCPU(b *testing.B) func() {
	start := cpuTime(b)
	return func() {
		b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
	}
}

// cpuTime is the process's CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
