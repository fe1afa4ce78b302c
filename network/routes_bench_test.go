package network

import (
	"log/slog"
	"net/netip"
	"testing"
)

// BenchmarkRoutesSync measures one Sync with 1,000 peers programmed, in a namespace the
// benchmark creates (an uplink at 172.16.0.1/16, one end of a veth pair, cluster 10.0.0.0/8 with a /24 per node):
// "1-changed" takes one peer out or puts it back (alternately), "unchanged" resends the same
// list. Run with: go test -run '^$' -bench BenchmarkRoutesSync ./network/
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
				for b.Loop() {
					if err := r.Sync(lists[i%2]); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
			b.Run("unchanged", func(b *testing.B) {
				for b.Loop() {
					if err := r.Sync(all); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
