package network

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func portReq(ns, name, port, protocol string, requested uint16) NodePortRequest {
	return NodePortRequest{Key: skey(ns, name), Port: port, Protocol: protocol, Requested: requested}
}

func assignNodePorts(t testing.TB, lo, hi uint16, reqs []NodePortRequest) (map[NodePortKey]uint16, []NodePortProblem) {
	t.Helper()
	ports, problems, err := AssignNodePorts(lo, hi, reqs)
	if err != nil {
		t.Fatal(err)
	}
	// Every port is in the range and unique per protocol: the protocol of the request that
	// counts for its key, the first with a known protocol by protocol and port.
	protocol := map[NodePortKey]string{}
	for _, r := range reqs {
		known := slices.Contains(nodePortProtocols, r.protocol())
		if p, seen := protocol[r.key()]; known && (!seen || r.protocol() < p) {
			protocol[r.key()] = r.protocol()
		}
	}
	type held struct {
		port     uint16
		protocol string
	}
	holder := map[held]NodePortKey{}
	for k, p := range ports {
		if p < lo || p > hi {
			t.Fatalf("%s got %d, outside %d-%d", k, p, lo, hi)
		}
		h := held{p, protocol[k]}
		if other, dup := holder[h]; dup {
			t.Fatalf("%s and %s both got %d/%s", k, other, p, h.protocol)
		}
		holder[h] = k
	}
	return ports, problems
}

func TestNodePortsAreTheSameInAnyOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	protocols := []string{"TCP", "UDP", "", "SCTP", "ICMP"}
	for _, hi := range []uint16{30009, 32767} {
		for trial := range 100 {
			var reqs []NodePortRequest
			for i := range 1 + rng.IntN(30) {
				r := portReq(fmt.Sprintf("ns-%d", rng.IntN(3)), fmt.Sprintf("svc-%d", rng.IntN(10)), fmt.Sprint(i%3), protocols[rng.IntN(len(protocols))], 0)
				if rng.IntN(3) == 0 {
					r.Requested = 29995 + uint16(rng.IntN(20))
				}
				reqs = append(reqs, r)
			}
			want, wantProblems := assignNodePorts(t, 30000, hi, reqs)
			for range 5 {
				rng.Shuffle(len(reqs), func(i, j int) { reqs[i], reqs[j] = reqs[j], reqs[i] })
				got, problems := assignNodePorts(t, 30000, hi, reqs)
				if !maps.Equal(got, want) || !reflect.DeepEqual(problems, wantProblems) {
					t.Fatalf("trial %d: another order gave\n%v %v\nnot\n%v %v", trial, got, problems, want, wantProblems)
				}
			}
		}
	}
}

func TestNodePortsExplicitPerProtocolAndCollisions(t *testing.T) {
	reqs := []NodePortRequest{
		portReq("default", "dns", "dns-tcp", "TCP", 30053),
		portReq("default", "dns", "dns", "UDP", 30053), // the same number, another protocol
		portReq("default", "web", "http", "", 30080),   // empty is TCP
		portReq("other", "web", "http", "TCP", 30080),  // taken by default/web
		portReq("default", "low", "80", "TCP", 80),     // outside the range
		portReq("default", "icmp", "x", "ICMP", 0),
		portReq("default", "web", "http", "UDP", 0), // listed twice: the TCP one sorts first
		portReq("", "noname", "", "TCP", 0),
	}
	for i := range 500 {
		reqs = append(reqs, portReq("bulk", fmt.Sprintf("svc-%d", i), "http", "TCP", 0))
	}
	ports, problems := assignNodePorts(t, DefaultNodePortMin, DefaultNodePortMax, reqs)
	for key, want := range map[NodePortKey]uint16{
		{skey("default", "dns"), "dns-tcp"}: 30053,
		{skey("default", "dns"), "dns"}:     30053,
		{skey("default", "web"), "http"}:    30080,
	} {
		if ports[key] != want {
			t.Errorf("%s got %d, want %d", key, ports[key], want)
		}
	}
	byKey := map[NodePortKey]NodePortProblem{}
	for _, p := range problems {
		byKey[p.Key] = p
	}
	for _, want := range []struct {
		key  NodePortKey
		kind ProblemKind
		text string
	}{
		{NodePortKey{skey("other", "web"), "http"}, ProblemTaken, "nodePort 30080/TCP is also requested by default/web:http, which keeps it (it sorts first by namespace, name and port): assigned "},
		{NodePortKey{skey("default", "low"), "80"}, ProblemOutsideRange, "nodePort 80 is outside the NodePort range 30000-32767: assigned "},
		{NodePortKey{skey("default", "icmp"), "x"}, ProblemInvalid, `protocol "ICMP" is not one of TCP, UDP, SCTP`},
		{NodePortKey{skey("default", "web"), "http"}, ProblemDuplicate, "listed more than once"},
		{NodePortKey{skey("", "noname"), ""}, ProblemInvalid, "without a Service name or a port"},
	} {
		p, ok := byKey[want.key]
		if !ok || p.Kind != want.kind || !strings.Contains(p.Message, want.text) {
			t.Errorf("%s: problem %+v, want %s saying %q", want.key, p, want.kind, want.text)
		}
		if want.kind == ProblemTaken || want.kind == ProblemOutsideRange {
			if p.Assigned == 0 || p.Assigned != ports[want.key] || p.Assigned == p.Requested {
				t.Errorf("%s: problem says assigned %d, the map %d", want.key, p.Assigned, ports[want.key])
			}
		}
	}
	if len(problems) != 5 {
		t.Errorf("%d problems, want 5: %v", len(problems), problems)
	}
	if _, ok := ports[NodePortKey{skey("default", "icmp"), "x"}]; ok {
		t.Error("an unknown protocol got a port")
	}
	if len(ports) != len(reqs)-3 {
		t.Errorf("%d ports for %d requests, 3 of them duplicate or invalid", len(ports), len(reqs))
	}
}

func TestNodePortRangeFull(t *testing.T) {
	var reqs []NodePortRequest
	for i := range 4 {
		reqs = append(reqs, portReq("a", fmt.Sprintf("svc-%d", i), "http", "TCP", 0))
	}
	reqs = append(reqs, portReq("a", "udp", "dns", "UDP", 0)) // UDP has its own three ports
	ports, problems := assignNodePorts(t, 30000, 30002, reqs)
	if len(ports) != 4 || len(problems) != 1 {
		t.Fatalf("ports %v, problems %v: want 3 TCP and 1 UDP assigned, 1 full", ports, problems)
	}
	p := problems[0]
	if p.Kind != ProblemRangeFull || p.Key != (NodePortKey{skey("a", "svc-3"), "http"}) ||
		p.Message != "no TCP port left in the NodePort range 30000-30002 (all 3 are assigned): the Service port has no nodePort" {
		t.Errorf("problem %+v", p)
	}
	for _, bad := range [][2]uint16{{0, 10}, {30001, 30000}} {
		if _, _, err := AssignNodePorts(bad[0], bad[1], nil); !errors.Is(err, ErrInvalidNodePortRange) {
			t.Errorf("range %v: %v, want ErrInvalidNodePortRange", bad, err)
		}
	}
	if ports, _ := assignNodePorts(t, 65535, 65535, reqs[:1]); ports[reqs[0].key()] != 65535 {
		t.Errorf("a range of one port: %v", ports)
	}
}

// TestNodePortStability measures how many other ports move when a Service is added or
// removed, over random trials, in the default range with 300 NodePort Services.
func TestNodePortStability(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	const trials, services = 300, 300
	var added, removed int
	for range trials {
		reqs := make([]NodePortRequest, services)
		for i := range reqs {
			reqs[i] = portReq("default", fmt.Sprintf("svc-%x", rng.Uint64()), "http", "TCP", 0)
		}
		before, _ := assignNodePorts(t, DefaultNodePortMin, DefaultNodePortMax, reqs)
		add, _ := assignNodePorts(t, DefaultNodePortMin, DefaultNodePortMax, append(slices.Clone(reqs), portReq("default", fmt.Sprintf("svc-%x", rng.Uint64()), "http", "TCP", 0)))
		i := rng.IntN(len(reqs))
		remove, _ := assignNodePorts(t, DefaultNodePortMin, DefaultNodePortMax, slices.Delete(slices.Clone(reqs), i, i+1))
		for k, p := range before {
			if q, ok := add[k]; ok && q != p {
				added++
			}
			if q, ok := remove[k]; ok && q != p {
				removed++
			}
		}
	}
	t.Logf("%d NodePorts in %d-%d, %d trials: adding one moved %d others in all, removing one %d", services, DefaultNodePortMin, DefaultNodePortMax, trials, added, removed)
	// 300 of 2,768 ports are held: about one addition in ten hits one.
	if added > trials/4 || removed > trials/4 {
		t.Errorf("adding moved %d, removing %d over %d trials; want at most %d each", added, removed, trials, trials/4)
	}
}
