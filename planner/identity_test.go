package planner

import (
	"regexp"
	"strings"
	"testing"
)

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

func TestInstanceID(t *testing.T) {
	long := strings.Repeat("very-long-deployment-name-", 4)
	tests := []struct {
		name, ns, workload, hash string
		slot                     int
		wantPrefix               string
	}{
		{"short name kept whole", "default", "web", "abc123", 0, "web-"},
		{"upper case and dots folded", "default", "Web.Frontend_v2", "abc123", 3, "web-frontend-v2-"},
		{"long name cut to fit 63", "default", long, "abc123", 2147483647, long[:41]},
		{"cut never leaves a trailing dash", "default", strings.Repeat("a", 40) + "-b", "h", 1, strings.Repeat("a", 40) + "-"},
		{"empty name still a label", "default", "---", "h", 0, "x-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := InstanceID(tt.ns, tt.workload, tt.hash, tt.slot)
			if len(id) > maxIDLen || !dnsLabel.MatchString(id) {
				t.Errorf("InstanceID = %q (%d chars), not a DNS label", id, len(id))
			}
			if !strings.HasPrefix(id, tt.wantPrefix) {
				t.Errorf("InstanceID = %q, want prefix %q", id, tt.wantPrefix)
			}
			if got := slotOf(id, idPrefix(tt.ns, tt.workload, tt.hash)); got != tt.slot {
				t.Errorf("slotOf(%q) = %d, want %d", id, got, tt.slot)
			}
		})
	}
}

func TestInstanceIDDistinguishes(t *testing.T) {
	long := strings.Repeat("x", 60)
	tests := []struct {
		name string
		a, b string
	}{
		{"spec hash", InstanceID("default", "web", "h1", 0), InstanceID("default", "web", "h2", 0)},
		{"namespace", InstanceID("default", "web", "h1", 0), InstanceID("staging", "web", "h1", 0)},
		{"slot", InstanceID("default", "web", "h1", 0), InstanceID("default", "web", "h1", 1)},
		{"names equal once cut", InstanceID("default", long+"a", "h1", 0), InstanceID("default", long+"b", "h1", 0)},
	}
	for _, tt := range tests {
		if tt.a == tt.b {
			t.Errorf("IDs differing by %s are both %q", tt.name, tt.a)
		}
	}
	if InstanceID("default", "web", "h1", 0) != InstanceID("default", "web", "h1", 0) {
		t.Error("InstanceID is not stable")
	}
}

func TestSlotOfRejectsForeignIDs(t *testing.T) {
	prefix := idPrefix("default", "web", "h1")
	for _, id := range []string{prefix, prefix + "01", prefix + "-1", prefix + "1x", "other-" + prefix + "1", InstanceID("default", "web", "h2", 1), prefix + "99999999999"} {
		if got := slotOf(id, prefix); got != -1 {
			t.Errorf("slotOf(%q) = %d, want -1", id, got)
		}
	}
}
