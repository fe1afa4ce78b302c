package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"testing"

	"github.com/shoalhq/shoal/network"
)

// fakeNetwork records what the network worker asks of the pod network.
type fakeNetwork struct {
	calls []string
	fail  error // returned once by the next call
}

func (f *fakeNetwork) result() error {
	err := f.fail
	f.fail = nil
	return err
}

func (f *fakeNetwork) SetSubnet(c network.SubnetClaim) error {
	f.calls = append(f.calls, "subnet "+c.Subnet.String())
	return f.result()
}

func (f *fakeNetwork) SyncServices(s []network.Service) error {
	f.calls = append(f.calls, fmt.Sprintf("sync %s", names(s)))
	return f.result()
}

func (f *fakeNetwork) UpdateServices(changed []network.Service, removed []network.ServiceKey) error {
	f.calls = append(f.calls, fmt.Sprintf("update %s removed %v", names(changed), removed))
	return f.result()
}

func (f *fakeNetwork) SyncPeers(p []network.Peer) error {
	f.calls = append(f.calls, fmt.Sprintf("peers %d", len(p)))
	return f.result()
}

func names(s []network.Service) []string {
	out := []string{}
	for _, svc := range s {
		out = append(out, svc.Name)
	}
	return out
}

func svc(name string, endpoints ...string) network.Service {
	s := network.Service{Namespace: "ns", Name: name, VIP: netip.MustParseAddr("10.96.0.9"),
		Ports: []network.ServicePort{{Protocol: network.ProtocolTCP, Port: 80}}}
	for _, e := range endpoints {
		s.Ports[0].Endpoints = append(s.Ports[0].Endpoints, network.Endpoint{Addr: netip.MustParseAddr(e), Port: 8080})
	}
	return s
}

// The worker sends the whole list first and after a failure, and otherwise only what the
// core said changed; a failure is tried again, a refusal of part of the input is not.
func TestNetWorkerSendsChangesOnly(t *testing.T) {
	f := &fakeNetwork{}
	w := newNetWorker(f, slog.New(slog.DiscardHandler))
	offer := func(list []network.Service, changed ...string) bool {
		rd := ready{proxy: &list}
		for _, c := range changed {
			rd.proxyChanged = append(rd.proxyChanged, network.ServiceKey{Namespace: "ns", Name: c})
		}
		w.offer(rd)
		return w.program() == 0
	}
	a, b := svc("a", "10.244.1.2"), svc("b", "10.244.1.3")
	offer([]network.Service{a, b}, "a", "b")
	b2 := svc("b", "10.244.1.3", "10.244.1.4")
	offer([]network.Service{a, b2}, "b")
	offer([]network.Service{b2}, "a")
	f.fail = errors.New("netlink: busy")
	if offer([]network.Service{}, "b") {
		t.Error("a failed update reported done")
	}
	if again := w.program(); again != 0 { // the retry a second later
		t.Errorf("the retry failed again (%v)", again)
	}
	f.fail = fmt.Errorf("one Service: %w", network.ErrServiceRefused)
	if !offer([]network.Service{a}, "a") {
		t.Error("a refusal of part of the input is retried")
	}
	offer([]network.Service{a}, "a")
	want := []string{
		"sync [a b]",
		"update [b] removed []",
		"update [] removed [ns/a]",
		"update [] removed [ns/b]",
		"sync []",
		"update [a] removed []",
		"update [a] removed []",
	}
	if !reflect.DeepEqual(f.calls, want) {
		t.Errorf("calls:\n%q\nwant:\n%q", f.calls, want)
	}
}

// Peers the routes refuse are offered again later: a refusal can come from the node's
// own state (its subnet, a link not up yet), which changes without a new list of peers.
func TestNetWorkerRetriesRefusedPeers(t *testing.T) {
	f := &fakeNetwork{fail: fmt.Errorf("node b: %w", network.ErrPeerRefused)}
	w := newNetWorker(f, slog.New(slog.DiscardHandler))
	peers := []network.Peer{{Node: "b"}}
	w.offer(ready{peers: &peers})
	if again := w.program(); again != retryRefusedPeers {
		t.Errorf("after a refusal: try again in %v, want %v", again, retryRefusedPeers)
	}
	if again := w.program(); again != 0 {
		t.Errorf("the retry: %v", again)
	}
	if want := []string{"peers 1", "peers 1"}; !reflect.DeepEqual(f.calls, want) {
		t.Errorf("calls %q, want %q", f.calls, want)
	}
}

func TestServiceChanges(t *testing.T) {
	a, b, c := svc("a", "10.244.1.2"), svc("b", "10.244.1.3"), svc("c")
	b2 := svc("b", "10.244.1.9")
	got := serviceChanges([]network.Service{a, b}, []network.Service{b2, c})
	want := []network.ServiceKey{{Namespace: "ns", Name: "a"}, {Namespace: "ns", Name: "b"}, {Namespace: "ns", Name: "c"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("changes %v, want %v", got, want)
	}
	if got := serviceChanges([]network.Service{a, b}, []network.Service{a, b}); len(got) != 0 {
		t.Errorf("no change: %v", got)
	}
}
