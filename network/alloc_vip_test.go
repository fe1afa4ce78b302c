package network

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func skey(ns, name string) ServiceKey { return ServiceKey{Namespace: ns, Name: name} }

func vipReq(ns, name, requested string) VIPRequest {
	r := VIPRequest{Key: skey(ns, name)}
	if requested != "" {
		r.Requested = netip.MustParseAddr(requested)
	}
	return r
}

func assignVIPs(t testing.TB, serviceRange string, reqs []VIPRequest) (map[ServiceKey]netip.Addr, []VIPProblem) {
	t.Helper()
	vips, problems, err := AssignVIPs(netip.MustParsePrefix(serviceRange), reqs)
	if err != nil {
		t.Fatal(err)
	}
	checkVIPs(t, serviceRange, vips)
	return vips, problems
}

// checkVIPs asserts what holds of every assignment: distinct addresses, each usable.
func checkVIPs(t testing.TB, serviceRange string, vips map[ServiceKey]netip.Addr) {
	t.Helper()
	p := netip.MustParsePrefix(serviceRange).Masked()
	last := ipv4FromUint32(ipv4Uint32(p.Addr()) + uint32(1)<<(32-p.Bits()) - 1)
	holder := map[netip.Addr]ServiceKey{}
	for k, a := range vips {
		if !p.Contains(a) || a == p.Addr() || a == p.Addr().Next() || a == last {
			t.Fatalf("%s got %s: outside %s or reserved", k, a, p)
		}
		if other, dup := holder[a]; dup {
			t.Fatalf("%s and %s both got %s", k, other, a)
		}
		holder[a] = k
	}
}

// randomVIPRequests makes n Services, a few with an explicit clusterIP (in the range or
// not, some colliding), some listed twice.
func randomVIPRequests(rng *rand.Rand, serviceRange netip.Prefix, n int) []VIPRequest {
	base := ipv4Uint32(serviceRange.Addr())
	size := uint32(1) << (32 - serviceRange.Bits())
	reqs := make([]VIPRequest, 0, n)
	for i := range n {
		r := VIPRequest{Key: skey(fmt.Sprintf("ns-%d", rng.IntN(5)), fmt.Sprintf("svc-%d", i))}
		switch rng.IntN(10) {
		case 0:
			r.Requested = ipv4FromUint32(base + uint32(rng.IntN(int(min(size, 16)))))
		case 1:
			r.Requested = ipv4FromUint32(base + rng.Uint32N(size))
		case 2:
			r.Requested = netip.MustParseAddr("192.0.2.1")
		case 3:
			if len(reqs) > 0 {
				r.Key = reqs[rng.IntN(len(reqs))].Key
			}
		}
		reqs = append(reqs, r)
	}
	return reqs
}

func TestVIPsAreTheSameInAnyOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, serviceRange := range []string{"10.96.0.0/12", "10.96.0.0/24", "10.96.0.0/28"} {
		p := netip.MustParsePrefix(serviceRange)
		for trial := range 100 {
			reqs := randomVIPRequests(rng, p, 1+rng.IntN(30))
			want, wantProblems := assignVIPs(t, serviceRange, reqs)
			for range 5 {
				rng.Shuffle(len(reqs), func(i, j int) { reqs[i], reqs[j] = reqs[j], reqs[i] })
				got, problems := assignVIPs(t, serviceRange, reqs)
				if !maps.Equal(got, want) || !reflect.DeepEqual(problems, wantProblems) {
					t.Fatalf("%s trial %d: another order gave\n%v %v\nnot\n%v %v", serviceRange, trial, got, problems, want, wantProblems)
				}
			}
			// Every Service gets an address or a problem saying it is full.
			for _, r := range reqs {
				if _, ok := want[r.Key]; !ok && !slices.ContainsFunc(wantProblems, func(p VIPProblem) bool { return p.Key == r.Key && p.Kind == ProblemRangeFull }) {
					t.Fatalf("%s trial %d: %s got nothing and no problem says why", serviceRange, trial, r.Key)
				}
			}
		}
	}
}

func TestVIPsHonourExplicitClusterIPs(t *testing.T) {
	reqs := []VIPRequest{vipReq("kube-system", "kube-dns", "10.96.0.10"), vipReq("default", "db", "10.96.200.7")}
	// Many derived Services around them: none may land on an explicit address.
	for i := range 2000 {
		reqs = append(reqs, vipReq("default", fmt.Sprintf("svc-%d", i), ""))
	}
	vips, problems := assignVIPs(t, "10.96.0.0/16", reqs)
	if len(problems) != 0 {
		t.Errorf("problems: %v", problems)
	}
	if got := vips[skey("kube-system", "kube-dns")]; got != netip.MustParseAddr("10.96.0.10") {
		t.Errorf("kube-dns got %s, want 10.96.0.10", got)
	}
	if got := vips[skey("default", "db")]; got != netip.MustParseAddr("10.96.200.7") {
		t.Errorf("db got %s, want 10.96.200.7", got)
	}
	if len(vips) != len(reqs) {
		t.Errorf("%d of %d Services got an address", len(vips), len(reqs))
	}
}

func TestVIPCollisionsAndUnusableRequests(t *testing.T) {
	reqs := []VIPRequest{
		vipReq("b", "web", "10.96.0.10"),
		vipReq("a", "web", "10.96.0.10"), // sorts first: keeps it
		vipReq("a", "outside", "10.97.0.1"),
		vipReq("a", "v6", "fd00::1"),
		vipReq("a", "network", "10.96.0.0"),
		vipReq("a", "apiserver", "10.96.0.1"),
		vipReq("a", "broadcast", "10.96.255.255"),
		vipReq("a", "mapped", "::ffff:10.96.0.20"), // IPv4-mapped: the IPv4 address
		vipReq("a", "twice", ""),
		vipReq("a", "twice", "10.96.0.30"),
		vipReq("", "", ""),
	}
	vips, problems := assignVIPs(t, "10.96.0.0/16", reqs)
	if got := vips[skey("a", "web")]; got != netip.MustParseAddr("10.96.0.10") {
		t.Errorf("a/web got %s, want the 10.96.0.10 it asked for", got)
	}
	if got := vips[skey("a", "mapped")]; got != netip.MustParseAddr("10.96.0.20") {
		t.Errorf("a/mapped got %s, want 10.96.0.20", got)
	}
	// "twice" is listed with no address and with one: the first in sorted order (none) counts.
	if got := vips[skey("a", "twice")]; got == netip.MustParseAddr("10.96.0.30") || !got.IsValid() {
		t.Errorf("a/twice got %s, want a derived address", got)
	}
	byKey := map[ServiceKey]VIPProblem{}
	for _, p := range problems {
		byKey[p.Key] = p
	}
	for _, want := range []struct {
		key  ServiceKey
		kind ProblemKind
		text string
	}{
		{skey("b", "web"), ProblemTaken, "clusterIP 10.96.0.10 is also requested by a/web, which keeps it (it sorts first by namespace and name): assigned "},
		{skey("a", "outside"), ProblemOutsideRange, "clusterIP 10.97.0.1 is outside the service range 10.96.0.0/16: assigned "},
		{skey("a", "v6"), ProblemOutsideRange, "clusterIP fd00::1 is outside the service range"},
		{skey("a", "network"), ProblemReserved, "the network address of the service range"},
		{skey("a", "apiserver"), ProblemReserved, "which Kubernetes gives the API server"},
		{skey("a", "broadcast"), ProblemReserved, "the broadcast address"},
		{skey("a", "twice"), ProblemDuplicate, "listed more than once"},
		{skey("", ""), ProblemInvalid, "without a name"},
	} {
		p, ok := byKey[want.key]
		if !ok || p.Kind != want.kind || !strings.Contains(p.Message, want.text) {
			t.Errorf("%s: problem %+v, want %s saying %q", want.key, p, want.kind, want.text)
			continue
		}
		// A duplicate or invalid request gets nothing; the others get an address instead.
		gotNothing := want.kind == ProblemDuplicate || want.kind == ProblemInvalid
		if assigned := vips[want.key]; gotNothing && p.Assigned.IsValid() || !gotNothing && (p.Assigned != assigned || !assigned.IsValid()) {
			t.Errorf("%s: problem says assigned %s, the map %s", want.key, p.Assigned, assigned)
		}
	}
	if p := byKey[skey("b", "web")]; p.Holder != skey("a", "web") || p.String() != "b/web: "+p.Message {
		t.Errorf("taken: holder %s, string %q", p.Holder, p)
	}
	if len(problems) != 8 || !slices.IsSortedFunc(problems, func(a, b VIPProblem) int { return compareServiceKeys(a.Key, b.Key) }) {
		t.Errorf("problems, want 8 in key order: %v", problems)
	}
}

func TestVIPRangeFull(t *testing.T) {
	// A /29 has 8 addresses, 5 usable; 7 Services, one explicit.
	reqs := []VIPRequest{vipReq("z", "pinned", "10.96.0.6")}
	for i := range 6 {
		reqs = append(reqs, vipReq("a", fmt.Sprintf("svc-%d", i), ""))
	}
	vips, problems := assignVIPs(t, "10.96.0.0/29", reqs)
	if len(vips) != 5 || vips[skey("z", "pinned")] != netip.MustParseAddr("10.96.0.6") {
		t.Errorf("assigned %v: want 5, the explicit one honoured", vips)
	}
	// Derived addresses go in key order: the last two keys find the range full.
	var full []ServiceKey
	for _, p := range problems {
		if p.Kind == ProblemRangeFull && strings.Contains(p.Message, "no address left in the service range 10.96.0.0/29 (all 5 usable") {
			full = append(full, p.Key)
		}
	}
	if want := []ServiceKey{skey("a", "svc-4"), skey("a", "svc-5")}; !slices.Equal(full, want) || len(problems) != 2 {
		t.Errorf("full: %v (problems %v), want %v", full, problems, want)
	}
	for _, k := range full {
		if _, ok := vips[k]; ok {
			t.Errorf("%s is reported full yet has %s", k, vips[k])
		}
	}
}

func TestVIPRanges(t *testing.T) {
	for _, tc := range []struct {
		serviceRange string
		services     int
	}{{"10.96.0.0/12", 10_000}, {"10.96.0.0/24", 253}, {"10.96.0.0/30", 1}} {
		var reqs []VIPRequest
		for i := range tc.services {
			reqs = append(reqs, vipReq("default", fmt.Sprintf("svc-%d", i), ""))
		}
		vips, problems := assignVIPs(t, tc.serviceRange, reqs)
		if len(vips) != tc.services || len(problems) != 0 {
			t.Errorf("%s: %d of %d Services got an address; problems %v", tc.serviceRange, len(vips), tc.services, problems)
		}
	}
	if vips, _ := assignVIPs(t, "10.96.0.0/30", []VIPRequest{vipReq("a", "b", "")}); vips[skey("a", "b")] != netip.MustParseAddr("10.96.0.2") {
		t.Errorf("the one usable address of a /30: got %v", vips)
	}
	for _, bad := range []string{"", "fd00::/112", "10.0.0.0/11", "10.96.0.0/31", "10.96.0.1/32"} {
		var p netip.Prefix
		if bad != "" {
			p = netip.MustParsePrefix(bad)
		}
		if _, _, err := AssignVIPs(p, nil); !errors.Is(err, ErrInvalidServiceRange) {
			t.Errorf("range %q: %v, want ErrInvalidServiceRange", bad, err)
		}
	}
}

// movedVIPs counts the Services of both maps whose address differs.
func movedVIPs(before, after map[ServiceKey]netip.Addr) int {
	n := 0
	for k, a := range before {
		if b, ok := after[k]; ok && a != b {
			n++
		}
	}
	return n
}

// TestVIPStability measures how many other Services move when one is added or removed,
// over random trials. A move needs the added Service to land on (or the removed one to
// have been in) another's probing path, so it is as rare as the range is empty.
func TestVIPStability(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, tc := range []struct {
		serviceRange string
		services     int
		trials       int
		// maxMoves bounds the Services moved over all trials, additions and removals
		// apart; about services/usable per change is what linear probing promises.
		maxMoves int
	}{
		{"10.96.0.0/12", 1000, 300, 3},
		{"10.96.0.0/16", 1000, 300, 20},
		{"10.96.0.0/24", 100, 300, 250},
	} {
		var added, removed, changesThatMoved int
		for range tc.trials {
			reqs := make([]VIPRequest, tc.services)
			for i := range reqs {
				reqs[i] = vipReq(fmt.Sprintf("ns-%d", rng.IntN(10)), fmt.Sprintf("svc-%x", rng.Uint64()), "")
			}
			before, _ := assignVIPs(t, tc.serviceRange, reqs)
			add, _ := assignVIPs(t, tc.serviceRange, append(slices.Clone(reqs), vipReq(fmt.Sprintf("ns-%d", rng.IntN(10)), fmt.Sprintf("svc-%x", rng.Uint64()), "")))
			i := rng.IntN(len(reqs))
			remove, _ := assignVIPs(t, tc.serviceRange, slices.Delete(slices.Clone(reqs), i, i+1))
			a, r := movedVIPs(before, add), movedVIPs(before, remove)
			added, removed = added+a, removed+r
			if a > 0 || r > 0 {
				changesThatMoved++
			}
		}
		t.Logf("%s, %d Services, %d trials: adding one moved %d others in all, removing one %d; %d trials of %d moved any",
			tc.serviceRange, tc.services, tc.trials, added, removed, changesThatMoved, tc.trials)
		if added > tc.maxMoves || removed > tc.maxMoves {
			t.Errorf("%s: adding moved %d, removing %d over %d trials; want at most %d each", tc.serviceRange, added, removed, tc.trials, tc.maxMoves)
		}
	}
}

// BenchmarkAssignVIPs assigns 5,000 Services in a /16.
func BenchmarkAssignVIPs(b *testing.B) {
	reqs := make([]VIPRequest, 5000)
	for i := range reqs {
		reqs[i] = vipReq(fmt.Sprintf("ns-%d", i%50), fmt.Sprintf("svc-%d", i), "")
	}
	p := netip.MustParsePrefix("10.96.0.0/16")
	b.ResetTimer()
	for range b.N {
		if vips, _, _ := AssignVIPs(p, reqs); len(vips) != len(reqs) {
			b.Fatal("a Service got no address")
		}
	}
}
