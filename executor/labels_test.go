package executor

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestRuntimeID(t *testing.T) {
	long := strings.Repeat("a", 70)
	tests := []struct {
		instance, container string
		want                string // "" means: a hashed ID
	}{
		{"web-5d8f7c9b2a-0", "app", "web-5d8f7c9b2a-0.app"},
		{"web.v2-0", "side-car", "web.v2-0.side-car"},
		{long, "app", ""},
		{"web_", "app", ""}, // '_' then '.' is not a valid identifier
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		got := RuntimeID(tt.instance, tt.container)
		if tt.want != "" && got != tt.want {
			t.Errorf("RuntimeID(%q, %q) = %q, want %q", tt.instance, tt.container, got, tt.want)
		}
		if len(got) > maxIdentifier || !identifierRE.MatchString(got) {
			t.Errorf("RuntimeID(%q, %q) = %q, not a containerd identifier", tt.instance, tt.container, got)
		}
		if seen[got] {
			t.Errorf("RuntimeID %q repeats", got)
		}
		seen[got] = true
	}
	if RuntimeID(long, "a") == RuntimeID(long, "b") {
		t.Error("hashed IDs of two containers are equal")
	}
}

func TestLabelsRoundTrip(t *testing.T) {
	s := &InstanceSpec{ID: "web-0", Namespace: "shop", Workload: "web", Revision: "c0ffee", SpecHash: "h1", Node: "n1", GracePeriod: 45 * time.Second}
	labels := instanceLabels(s, "app", netip.MustParseAddr("10.244.1.7"))
	got := instanceFromLabels(labels)
	want := InstanceState{ID: "web-0", Namespace: "shop", Workload: "web", Revision: "c0ffee", SpecHash: "h1", Node: "n1",
		GracePeriod: 45 * time.Second, Addr: netip.MustParseAddr("10.244.1.7")}
	if got.ID != want.ID || got.Namespace != want.Namespace || got.Workload != want.Workload || got.Revision != want.Revision ||
		got.SpecHash != want.SpecHash || got.Node != want.Node || got.GracePeriod != want.GracePeriod || got.Addr != want.Addr {
		t.Errorf("labels round trip: %+v, want %+v", got, want)
	}
	if labels[LabelContainer] != "app" || restartsFromLabels(labels) != 0 {
		t.Errorf("labels %v", labels)
	}
	for k := range labels {
		if !strings.HasPrefix(k, LabelPrefix) {
			t.Errorf("label %s lacks the %s prefix", k, LabelPrefix)
		}
	}
	if hostLabels := instanceLabels(s, "app", netip.Addr{}); hostLabels[LabelAddr] != "" || instanceFromLabels(hostLabels).Addr.IsValid() {
		t.Errorf("host networking labels carry an address: %v", hostLabels)
	}
	if restartsFromLabels(map[string]string{LabelRestarts: "x"}) != 0 || restartsFromLabels(map[string]string{LabelRestarts: "3"}) != 3 {
		t.Error("restart count from labels")
	}
}
