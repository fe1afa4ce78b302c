package executor

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// CollectNetworks keeps an instance being started, and one that began while a collection
// ran even if it finished before the collection asked about it (containerd was listed
// before its containers existed); once no collection runs, finished starts are forgotten.
func TestStartTracker(t *testing.T) {
	var tr startTracker
	endBefore := tr.begin("before")
	starting, done := tr.collecting()
	if !starting("before") {
		t.Error("an instance being started when the collection began is not kept")
	}
	if starting("other") {
		t.Error("an instance never started is kept")
	}
	endDuring := tr.begin("during")
	endDuring()
	if !starting("during") {
		t.Error("an instance that began and finished during the collection is not kept")
	}
	endBefore()
	if starting("before") {
		t.Error("an instance that began before the collection and finished is still kept (it is in containerd now)")
	}
	// Overlapping collections: the second's view lasts until both end.
	starting2, done2 := tr.collecting()
	done()
	tr.begin("late")()
	if !starting2("late") || !starting2("during") {
		t.Error("the second collection lost what began while it ran")
	}
	done2()
	starting3, done3 := tr.collecting()
	defer done3()
	if starting3("during") || starting3("late") {
		t.Error("a new collection keeps starts that finished before it began")
	}
	end1, end2 := tr.begin("twice"), tr.begin("twice")
	end1()
	if !starting3("twice") {
		t.Error("an instance with one of two Starts still running is not kept")
	}
	end2()
}

// Host ports become port mappings; container ports without one do not.
func TestPortMappings(t *testing.T) {
	s := &InstanceSpec{Containers: []ContainerSpec{
		{Name: "a", Ports: []Port{{Port: 8080, Protocol: "TCP", HostPort: 80}, {Port: 9090, Protocol: "TCP"}}},
		{Name: "b", Ports: []Port{{Port: 53, Protocol: "UDP", HostPort: 5353, HostIP: "192.0.2.7"}}},
	}}
	want := []PortMapping{
		{HostPort: 80, ContainerPort: 8080, Protocol: "TCP"},
		{HostPort: 5353, ContainerPort: 53, Protocol: "UDP", HostIP: netip.MustParseAddr("192.0.2.7")},
	}
	if got := portMappings(s); !slices.Equal(got, want) {
		t.Errorf("portMappings = %+v, want %+v", got, want)
	}
}

func TestPortValidate(t *testing.T) {
	for _, p := range []Port{{Port: 0}, {Port: 70000}, {Port: 80, HostPort: -1}, {Port: 80, HostPort: 65536}, {Port: 80, HostPort: 80, HostIP: "nope"}} {
		s := InstanceSpec{ID: "x", Containers: []ContainerSpec{{Name: "c", Image: "i", Ports: []Port{p}}}}
		if err := s.Validate(); err == nil {
			t.Errorf("port %+v validated", p)
		}
	}
	ok := InstanceSpec{ID: "x", Containers: []ContainerSpec{{Name: "c", Image: "i", Ports: []Port{{Port: 80, HostPort: 8080, HostIP: "::1"}}}}}
	if err := ok.Validate(); err != nil {
		t.Error(err)
	}
}

// The hosts file names localhost and the instance's address, as the kubelet's does.
func TestNameFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "inst")
	if err := writeNameFiles(dir, "web-0", netip.MustParseAddr("10.244.0.5")); err != nil {
		t.Fatal(err)
	}
	hosts, _ := os.ReadFile(hostsPath(dir))
	if !strings.Contains(string(hosts), "127.0.0.1\tlocalhost\n") || !strings.HasSuffix(string(hosts), "10.244.0.5\tweb-0\n") {
		t.Errorf("hosts:\n%s", hosts)
	}
	if name, _ := os.ReadFile(hostnamePath(dir)); string(name) != "web-0\n" {
		t.Errorf("hostname file %q", name)
	}
	if got := hostname(strings.Repeat("a", 62) + "-bc"); len(got) > 63 || strings.HasSuffix(got, "-") {
		t.Errorf("hostname of a long ID = %q", got)
	}
}
