package network

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func mustPodRange(t testing.TB, cluster string, bits int) PodRange {
	t.Helper()
	r, err := NewPodRange(netip.MustParsePrefix(cluster), bits)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func subnetClaim(node, subnet string, since int64) SubnetClaim {
	c := SubnetClaim{Node: node, Since: since}
	if subnet != "" {
		c.Subnet = netip.MustParsePrefix(subnet)
	}
	return c
}

func TestNewPodRange(t *testing.T) {
	r := mustPodRange(t, "10.244.1.0/16", 24)
	if r.Cluster() != netip.MustParsePrefix("10.244.0.0/16") || r.NodeBits() != 24 || r.Claimable() != 255 {
		t.Errorf("got %s, %d claimable; want 10.244.0.0/16 in /24 subnets, 255 claimable", r, r.Claimable())
	}
	if got := mustPodRange(t, "10.0.0.0/8", 24).Claimable(); got != MaxPodSubnets-1 {
		t.Errorf("a /8 in /24s: %d claimable, want %d", got, MaxPodSubnets-1)
	}
	for _, tc := range []struct {
		cluster string
		bits    int
		why     string
	}{
		{"", 24, "no cluster range"},
		{"fd00::/48", 64, "not IPv4"},
		{"::ffff:10.244.0.0/112", 120, "not IPv4"},
		{"10.244.0.0/16", 16, "not smaller"},
		{"10.244.0.0/16", 8, "not smaller"},
		{"10.244.0.0/16", 31, "no room for instances"},
		{"10.0.0.0/8", 25, "more than 65536"},
		{"0.0.0.0/0", 24, "more than 65536"},
	} {
		var cluster netip.Prefix
		if tc.cluster != "" {
			cluster = netip.MustParsePrefix(tc.cluster)
		}
		_, err := NewPodRange(cluster, tc.bits)
		if !errors.Is(err, ErrInvalidPodRange) || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("NewPodRange(%q, %d) = %v, want ErrInvalidPodRange saying %q", tc.cluster, tc.bits, err, tc.why)
		}
	}
}

func TestPreferredSubnetsVisitEveryClaimableSubnetOnce(t *testing.T) {
	r := mustPodRange(t, "10.244.0.0/20", 24)
	starts := map[netip.Prefix]bool{}
	for n := range 20 {
		node := fmt.Sprintf("node-%d", n)
		order := slices.Collect(r.PreferredSubnets(node))
		if len(order) != 15 {
			t.Fatalf("%s: %d subnets, want the 15 claimable", node, len(order))
		}
		seen := map[netip.Prefix]bool{}
		for i, p := range order {
			if seen[p] || !r.IsClaimable(p) || p == netip.MustParsePrefix("10.244.0.0/24") {
				t.Fatalf("%s: subnet %d is %s: repeated, unclaimable or the first", node, i, p)
			}
			seen[p] = true
			// The walk goes up one subnet at a time, from the last to the second.
			if i > 0 && ipv4Uint32(p.Addr())-ipv4Uint32(order[i-1].Addr()) != 256 && p != netip.MustParsePrefix("10.244.1.0/24") {
				t.Fatalf("%s: %s follows %s", node, p, order[i-1])
			}
		}
		if !slices.Equal(order, slices.Collect(r.PreferredSubnets(node))) {
			t.Fatalf("%s: the order changed between calls", node)
		}
		starts[order[0]] = true
	}
	if len(starts) < 8 {
		t.Errorf("20 nodes start at only %d different subnets of 15: the hash does not spread them", len(starts))
	}
}

// settle is the rule written the slow, obvious way: one claim per node (its first by
// (Since, subnet)), and per subnet the claim with the lowest (Since, node).
func settle(r PodRange, claims []SubnetClaim) map[netip.Prefix]string {
	var valid []SubnetClaim
	for _, c := range claims {
		if c.Node != "" && r.IsClaimable(c.Subnet) {
			valid = append(valid, c)
		}
	}
	var firsts []SubnetClaim
	for _, c := range valid {
		first := true
		for _, d := range valid {
			if d.Node == c.Node && (d.Since < c.Since || d.Since == c.Since && d.Subnet.Addr().Less(c.Subnet.Addr())) {
				first = false
			}
		}
		if first {
			firsts = append(firsts, c)
		}
	}
	owners := map[netip.Prefix]string{}
	for _, c := range firsts {
		wins := true
		for _, d := range firsts {
			if d.Subnet == c.Subnet && (d.Since < c.Since || d.Since == c.Since && d.Node < c.Node) {
				wins = false
			}
		}
		if wins {
			owners[c.Subnet] = c.Node
		}
	}
	return owners
}

// randomClaims makes claims that conflict often: few subnets, few distinct times, some
// nodes with two claims, and some claims that must be ignored.
func randomClaims(rng *rand.Rand, r PodRange, n int) []SubnetClaim {
	claimable := slices.Collect(r.PreferredSubnets(""))
	junk := []string{"10.244.0.0/16", "10.244.0.0/24", "10.244.3.7/24", "10.245.0.0/24", "10.244.4.0/25", "fd00::/64", "::ffff:10.244.3.0/120"}
	claims := make([]SubnetClaim, n)
	for i := range claims {
		c := SubnetClaim{Node: fmt.Sprintf("node-%d", rng.IntN(n)), Subnet: claimable[rng.IntN(len(claimable))], Since: int64(rng.IntN(4))}
		switch rng.IntN(10) {
		case 0:
			c.Subnet = netip.MustParsePrefix(junk[rng.IntN(len(junk))])
			c.Since = -1 << 40 // as early as can be: it must still win nothing
		case 1:
			c.Node = ""
		}
		claims[i] = c
	}
	return claims
}

func TestSubnetVerdictsAreTheSameInAnyOrder(t *testing.T) {
	r := mustPodRange(t, "10.244.0.0/20", 24)
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 300 {
		claims := randomClaims(rng, r, 1+rng.IntN(40))
		want := settle(r, claims)
		for range 5 {
			rng.Shuffle(len(claims), func(i, j int) { claims[i], claims[j] = claims[j], claims[i] })
			got := r.SubnetOwners(claims)
			if !maps.Equal(got, want) {
				t.Fatalf("trial %d: owners %v, want %v for claims %v", trial, got, want, claims)
			}
			for _, c := range claims {
				if c.Node == "" || !r.IsClaimable(c.Subnet) {
					if winner, lost := r.LostClaim(c, claims); !lost || winner != "" {
						t.Fatalf("trial %d: invalid claim %v: LostClaim = %q, %v; want lost to nobody", trial, c, winner, lost)
					}
					continue
				}
				// c against the others' claims: the verdict the subnet's owner says, unless c is
				// not its node's first claim (then another of its node's may hold it).
				winner, lost := r.LostClaim(c, claims)
				owner := settle(r, append(othersOf(c.Node, claims), c))[c.Subnet]
				if winner != owner || lost != (owner != c.Node) {
					t.Fatalf("trial %d: LostClaim(%v) = %q, %v; the owner is %q", trial, c, winner, lost, owner)
				}
			}
		}
	}
}

func TestNodesJoiningAtTheSameMomentGetDifferentSubnets(t *testing.T) {
	r := mustPodRange(t, "10.244.0.0/16", 24)
	// Two nodes whose names start them at the same subnet, joining at one moment: each
	// sees no claim, so both choose that subnet.
	first := map[netip.Prefix]string{}
	var a, b string
	for n := 0; b == ""; n++ {
		name := fmt.Sprintf("node-%d", n)
		p, err := r.ChooseSubnet(SubnetClaim{Node: name}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if other, ok := first[p]; ok {
			a, b = other, name
		}
		first[p] = name
	}
	subnet, _ := r.ChooseSubnet(SubnetClaim{Node: a}, nil)
	const now = 1_700_000_000_000
	ca, cb := SubnetClaim{Node: a, Subnet: subnet, Since: now}, SubnetClaim{Node: b, Subnet: subnet, Since: now}
	lower, higher := min(a, b), max(a, b)

	// Every node, whichever order it hears the claims in, gives the subnet to the lower name.
	for _, claims := range [][]SubnetClaim{{ca, cb}, {cb, ca}} {
		if got := r.SubnetOwners(claims); got[subnet] != lower || len(got) != 1 {
			t.Errorf("owners %v, want %s to keep %s", got, lower, subnet)
		}
	}
	wa, lostA := r.LostClaim(ca, []SubnetClaim{cb})
	wb, lostB := r.LostClaim(cb, []SubnetClaim{ca})
	if lostA == lostB || wa != lower || wb != lower {
		t.Fatalf("verdicts: %s lost=%v to %q, %s lost=%v to %q; want exactly one to lose, to %s", a, lostA, wa, b, lostB, wb, lower)
	}
	self := map[string]SubnetClaim{a: ca, b: cb}
	keep, err := r.ChooseSubnet(self[lower], []SubnetClaim{self[higher]})
	if err != nil || keep != subnet {
		t.Errorf("%s chose %s, %v; want to keep %s", lower, keep, err, subnet)
	}
	moved, err := r.ChooseSubnet(self[higher], []SubnetClaim{self[lower]})
	if err != nil || moved == subnet || !r.IsClaimable(moved) {
		t.Fatalf("%s chose %s, %v; want another claimable subnet than %s", higher, moved, err, subnet)
	}
	// Its new claim is later than every other; nobody contests it.
	newClaim := SubnetClaim{Node: higher, Subnet: moved, Since: now + 1}
	if got := r.SubnetOwners([]SubnetClaim{self[lower], newClaim}); got[subnet] != lower || got[moved] != higher {
		t.Errorf("after the move, owners %v", got)
	}
}

// converge runs the protocol among nodes that all see claims until no node changes its
// claim: each node keeps its subnet or chooses again, with a new Since when it moves. All
// nodes move at once each round, the worst case: the losers may collide again. Yet each
// round settles at least one more node for good (of those choosing one subnet, the first
// by the rule keeps it), so it must end within a round per node.
func converge(t *testing.T, r PodRange, claims map[string]SubnetClaim, now int64) map[string]SubnetClaim {
	t.Helper()
	for round := 1; round <= len(claims)+1; round++ {
		all := slices.Collect(maps.Values(claims))
		next := map[string]SubnetClaim{}
		changed := false
		for node, c := range claims {
			p, err := r.ChooseSubnet(c, all)
			if err != nil {
				t.Fatal(err)
			}
			if p != c.Subnet {
				c, changed = SubnetClaim{Node: node, Subnet: p, Since: now + int64(round)}, true
			}
			next[node] = c
		}
		claims = next
		if !changed {
			return claims
		}
	}
	t.Fatalf("claims did not settle in %d rounds: %v", len(claims)+1, claims)
	return nil
}

func TestHealedPartitionLeavesEverySubnetToOneNode(t *testing.T) {
	r := mustPodRange(t, "10.244.0.0/24", 28) // 15 claimable subnets: conflicts are certain
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := range 50 {
		// Before the partition, 4 nodes agree; then each side adds nodes seeing only itself.
		claims := map[string]SubnetClaim{}
		for n := range 4 {
			claims[fmt.Sprintf("old-%d", n)] = SubnetClaim{Node: fmt.Sprintf("old-%d", n)}
		}
		claims = converge(t, r, claims, 1000)
		before := maps.Clone(claims)
		sides := [2]map[string]SubnetClaim{maps.Clone(claims), maps.Clone(claims)}
		for s := range sides {
			for n := range 2 + rng.IntN(4) {
				name := fmt.Sprintf("side%d-%d-%d", s, trial, n)
				sides[s][name] = SubnetClaim{Node: name}
			}
			sides[s] = converge(t, r, sides[s], int64(2000+s*rng.IntN(2))) // same moment or not
		}
		healed := maps.Clone(sides[0])
		maps.Copy(healed, sides[1])
		final := converge(t, r, healed, 3000)

		owners := r.SubnetOwners(slices.Collect(maps.Values(final)))
		if len(owners) != len(final) {
			t.Fatalf("trial %d: %d nodes own %d subnets after healing: %v", trial, len(final), len(owners), final)
		}
		for node, c := range final {
			if owners[c.Subnet] != node {
				t.Fatalf("trial %d: %s claims %s, owned by %s", trial, node, c.Subnet, owners[c.Subnet])
			}
		}
		for node, c := range before {
			if final[node] != c {
				t.Errorf("trial %d: %s, whose claim predates the partition, moved from %s to %s", trial, node, c.Subnet, final[node].Subnet)
			}
		}
	}
}

func TestClaimsEarlierSinceKeepsTheSubnet(t *testing.T) {
	r := mustPodRange(t, "10.244.0.0/16", 24)
	x := "10.244.7.0/24"
	early, late := subnetClaim("zed", x, 100), subnetClaim("alice", x, 200)
	if w, lost := r.LostClaim(late, []SubnetClaim{early}); !lost || w != "zed" {
		t.Errorf("the later claim of alice: lost=%v to %q, want lost to zed (earlier Since beats a lower name)", lost, w)
	}
	if w, lost := r.LostClaim(early, []SubnetClaim{late}); lost || w != "zed" {
		t.Errorf("the earlier claim of zed: lost=%v to %q, want kept", lost, w)
	}
}

func TestChoiceIsStableWhenUnrelatedNodesComeAndGo(t *testing.T) {
	r := mustPodRange(t, "10.244.0.0/16", 24)
	rng := rand.New(rand.NewPCG(5, 6))
	subnets := slices.Collect(r.PreferredSubnets(""))
	for trial := range 200 {
		var others []SubnetClaim
		for n := range rng.IntN(200) {
			others = append(others, SubnetClaim{Node: fmt.Sprintf("other-%d", n), Subnet: subnets[rng.IntN(len(subnets))], Since: int64(rng.IntN(1000))})
		}
		self := SubnetClaim{Node: fmt.Sprintf("self-%d", trial), Since: 500}
		fresh, err := r.ChooseSubnet(self, others)
		if err != nil {
			t.Fatal(err)
		}
		self.Subnet = fresh
		// Nodes join (on subnets other than self's, or on self's but later) and leave.
		changed := slices.Clone(others)
		rng.Shuffle(len(changed), func(i, j int) { changed[i], changed[j] = changed[j], changed[i] })
		changed = changed[:rng.IntN(len(changed)+1)]
		for n := range rng.IntN(200) {
			c := SubnetClaim{Node: fmt.Sprintf("new-%d", n), Subnet: subnets[rng.IntN(len(subnets))], Since: int64(rng.IntN(1000))}
			if c.Subnet == self.Subnet {
				c.Since = self.Since + 1
			}
			changed = append(changed, c)
		}
		if got, err := r.ChooseSubnet(self, changed); err != nil || got != self.Subnet {
			t.Fatalf("trial %d: %s moved from %s to %s (%v) when unrelated nodes came and went", trial, self.Node, self.Subnet, got, err)
		}
		// A fresh choice too depends only on the subnets it walks past.
		var walked []netip.Prefix
		for p := range r.PreferredSubnets(self.Node) {
			if walked = append(walked, p); p == fresh {
				break
			}
		}
		var unrelated []SubnetClaim
		for _, c := range changed {
			if !slices.Contains(walked, c.Subnet) {
				unrelated = append(unrelated, c)
			}
		}
		for _, c := range others {
			if slices.Contains(walked, c.Subnet) {
				unrelated = append(unrelated, c)
			}
		}
		if got, _ := r.ChooseSubnet(SubnetClaim{Node: self.Node}, unrelated); got != fresh {
			t.Fatalf("trial %d: a fresh choice moved from %s to %s when nodes off its walk changed", trial, fresh, got)
		}
	}
}

func TestChooseSubnetWhenTheRangeIsFull(t *testing.T) {
	r := mustPodRange(t, "10.244.0.0/28", 30) // 3 claimable: .4, .8, .12
	others := []SubnetClaim{subnetClaim("a", "10.244.0.4/30", 1), subnetClaim("b", "10.244.0.8/30", 1), subnetClaim("c", "10.244.0.12/30", 1)}
	if p, err := r.ChooseSubnet(SubnetClaim{Node: "d"}, others); !errors.Is(err, ErrPodRangeFull) {
		t.Errorf("a fourth node got %s, %v; want ErrPodRangeFull", p, err)
	}
	// A node that holds its subnet keeps it, full or not, and its own claim is no obstacle.
	if p, err := r.ChooseSubnet(others[1], others); err != nil || p != others[1].Subnet {
		t.Errorf("b chose %s, %v; want to keep %s", p, err, others[1].Subnet)
	}
	// When one leaves, its subnet is free again.
	if p, err := r.ChooseSubnet(SubnetClaim{Node: "d"}, others[:2]); err != nil || p != others[2].Subnet {
		t.Errorf("after c left, d chose %s, %v; want %s", p, err, others[2].Subnet)
	}
}

func TestInvalidClaimsTakeNothing(t *testing.T) {
	r := mustPodRange(t, "10.244.0.0/16", 24)
	honest := subnetClaim("honest", "10.244.5.0/24", 1000)
	for _, bad := range []SubnetClaim{
		subnetClaim("evil", "10.244.0.0/16", 0), // the whole range
		subnetClaim("evil", "10.244.4.0/23", 0), // a bigger prefix over honest's
		subnetClaim("evil", "10.244.5.0/25", 0), // a smaller one inside it
		subnetClaim("evil", "10.244.5.7/24", 0), // not aligned
		subnetClaim("evil", "10.245.5.0/24", 0), // outside the range
		subnetClaim("evil", "10.244.0.0/24", 0), // the first subnet, never claimable
		subnetClaim("evil", "::ffff:10.244.5.0/120", 0),
		subnetClaim("", "10.244.5.0/24", 0), // no node
	} {
		if w, lost := r.LostClaim(honest, []SubnetClaim{bad}); lost {
			t.Errorf("honest lost to %q's invalid claim %v", w, bad)
		}
		if owners := r.SubnetOwners([]SubnetClaim{bad}); len(owners) != 0 {
			t.Errorf("invalid claim %v owns %v", bad, owners)
		}
		if w, lost := r.LostClaim(bad, []SubnetClaim{honest}); !lost || w != "" {
			t.Errorf("invalid claim %v: lost=%v to %q, want lost to nobody", bad, lost, w)
		}
	}
	// A node counts with one claim: its first. Its second cannot hold a subnet.
	two := []SubnetClaim{subnetClaim("greedy", "10.244.8.0/24", 1), subnetClaim("greedy", "10.244.9.0/24", 2)}
	if owners := r.SubnetOwners(two); len(owners) != 1 || owners[netip.MustParsePrefix("10.244.8.0/24")] != "greedy" {
		t.Errorf("a node with two claims owns %v, want only its first", owners)
	}
}

func TestChooseSubnetInputs(t *testing.T) {
	r := mustPodRange(t, "10.244.0.0/16", 24)
	if _, err := r.ChooseSubnet(SubnetClaim{}, nil); err == nil {
		t.Error("no node name: no error")
	}
	if _, err := (PodRange{}).ChooseSubnet(SubnetClaim{Node: "a"}, nil); !errors.Is(err, ErrInvalidPodRange) {
		t.Errorf("zero PodRange: %v, want ErrInvalidPodRange", err)
	}
	// A previous subnet of another size (the flag changed) is given up for a valid one.
	prev := subnetClaim("a", "10.244.5.0/25", 1)
	p, err := r.ChooseSubnet(prev, nil)
	if err != nil || !r.IsClaimable(p) {
		t.Errorf("previous %s of the wrong size: chose %s, %v", prev.Subnet, p, err)
	}
	if want := slices.Collect(r.PreferredSubnets("a"))[0]; p != want {
		t.Errorf("chose %s, want a's first preference %s", p, want)
	}
}

// BenchmarkChooseSubnet is a node choosing among 5,000 others' claims in a range of 65,536
// subnets.
func BenchmarkChooseSubnet(b *testing.B) {
	r := mustPodRange(b, "10.0.0.0/8", 24)
	others := benchClaims(r, 5000)
	b.ResetTimer()
	for range b.N {
		if _, err := r.ChooseSubnet(SubnetClaim{Node: "newcomer"}, others); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChooseSubnetNearlyFull walks past 65,534 claims to the one free subnet: the
// most a choice can cost.
func BenchmarkChooseSubnetNearlyFull(b *testing.B) {
	r := mustPodRange(b, "10.0.0.0/8", 24)
	others := benchClaims(r, r.Claimable()-1)
	b.ResetTimer()
	for range b.N {
		if _, err := r.ChooseSubnet(SubnetClaim{Node: "newcomer"}, others); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSubnetOwners settles 10,000 claims.
func BenchmarkSubnetOwners(b *testing.B) {
	r := mustPodRange(b, "10.0.0.0/8", 24)
	claims := benchClaims(r, 10000)
	b.ResetTimer()
	for range b.N {
		if len(r.SubnetOwners(claims)) != 10000 {
			b.Fatal("lost a claim")
		}
	}
}

// benchClaims makes n nodes' claims of distinct subnets, as a settled cluster has them.
func benchClaims(r PodRange, n int) []SubnetClaim {
	claims := make([]SubnetClaim, 0, n)
	for p := range r.PreferredSubnets("bench") {
		if len(claims) == n {
			break
		}
		claims = append(claims, SubnetClaim{Node: fmt.Sprintf("node-%05d", len(claims)), Subnet: p, Since: int64(len(claims))})
	}
	return claims
}
