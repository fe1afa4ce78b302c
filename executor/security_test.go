package executor

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/shoalhq/shoal/spec"
)

func TestCapabilitySet(t *testing.T) {
	all := []string{"CAP_CHOWN", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_SYS_ADMIN"}
	without := func(name string) []string {
		return slices.DeleteFunc(slices.Clone(DefaultCapabilities), func(c string) bool { return c == name })
	}
	for _, c := range []struct {
		name      string
		add, drop []string
		want      []string
	}{
		{"default", nil, nil, DefaultCapabilities},
		{"add lower case", []string{"net_raw"}, nil, slices.Sorted(slices.Values(append(slices.Clone(DefaultCapabilities), "CAP_NET_RAW")))},
		{"drop one", nil, []string{"CHOWN"}, without("CAP_CHOWN")},
		{"drop all, add one", []string{"NET_BIND_SERVICE"}, []string{"ALL"}, []string{"CAP_NET_BIND_SERVICE"}},
		{"add all, drop one", []string{"ALL"}, []string{"SYS_ADMIN"}, []string{"CAP_CHOWN", "CAP_NET_ADMIN", "CAP_NET_RAW"}},
		{"add all, drop all", []string{"ALL"}, []string{"all"}, nil},
	} {
		if got := capabilitySet(c.add, c.drop, all); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	if slices.Contains(DefaultCapabilities, "CAP_NET_RAW") || !slices.IsSorted(DefaultCapabilities) || len(DefaultCapabilities) != 13 {
		t.Errorf("DefaultCapabilities = %v: want Docker's 14 without NET_RAW, sorted", DefaultCapabilities)
	}
}

func TestUserString(t *testing.T) {
	id := func(v int64) *int64 { return &v }
	for _, c := range []struct {
		image string
		sec   Security
		want  string
	}{
		{"app", Security{}, ""},
		{"app:staff", Security{RunAsUser: id(7)}, "7"},
		{"app:staff", Security{RunAsGroup: id(9)}, "app:9"},
		{"", Security{RunAsGroup: id(9)}, "0:9"},
		{"", Security{RunAsUser: id(7), RunAsGroup: id(9)}, "7:9"},
	} {
		if got := userString(c.image, c.sec); got != c.want {
			t.Errorf("userString(%q, %+v) = %q, want %q", c.image, c.sec, got, c.want)
		}
	}
}

func TestPermissionsCheck(t *testing.T) {
	base := func(edit func(*InstanceSpec)) *InstanceSpec {
		s := &InstanceSpec{ID: "i", Containers: []ContainerSpec{{Name: "c", Image: "x"}}}
		edit(s)
		return s
	}
	hostPath := func(p string) func(*InstanceSpec) {
		return func(s *InstanceSpec) { s.Volumes = []Volume{{Name: "v", Kind: VolumeHostPath, HostPath: p}} }
	}
	for _, c := range []struct {
		name  string
		spec  *InstanceSpec
		perms Permissions
		flag  string // "" when allowed
	}{
		{"default sandbox", base(func(*InstanceSpec) {}), Permissions{}, ""},
		{"hostNetwork", base(func(s *InstanceSpec) { s.HostNetwork = true }), Permissions{}, "--allow-host-network"},
		{"hostNetwork allowed", base(func(s *InstanceSpec) { s.HostNetwork = true }), Permissions{HostNetwork: true}, ""},
		{"hostPID", base(func(s *InstanceSpec) { s.HostPID = true }), Permissions{HostIPC: true}, "--allow-host-pid"},
		{"hostIPC", base(func(s *InstanceSpec) { s.HostIPC = true }), Permissions{HostPID: true}, "--allow-host-ipc"},
		{"privileged", base(func(s *InstanceSpec) { s.Containers[0].Security.Privileged = true }), Permissions{}, "--allow-privileged"},
		{"hostPath outside", base(hostPath("/srv/database")), Permissions{HostPaths: []string{"/srv/data"}}, "--allow-host-path"},
		{"hostPath inside", base(hostPath("/srv/data/x")), Permissions{HostPaths: []string{"/srv/data"}}, ""},
		{"hostPath is the prefix", base(hostPath("/srv/data")), Permissions{HostPaths: []string{"/srv/data"}}, ""},
		{"hostPath any", base(hostPath("/etc")), Permissions{HostPaths: []string{"/"}}, ""},
		{"unconfined seccomp", base(func(s *InstanceSpec) { s.Containers[0].Security.Seccomp = spec.SeccompUnconfined }), Permissions{}, "--allow-unconfined-seccomp"},
		{"unconfined seccomp allowed", base(func(s *InstanceSpec) { s.Containers[0].Security.Seccomp = spec.SeccompUnconfined }), Permissions{SeccompUnconfined: true}, ""},
		{"add back a default capability", base(func(s *InstanceSpec) { s.Containers[0].Security.CapAdd = []string{"chown", "NET_BIND_SERVICE"} }), Permissions{}, ""},
		{"add NET_RAW", base(func(s *InstanceSpec) { s.Containers[0].Security.CapAdd = []string{"net_raw"} }), Permissions{}, "--allow-capability=NET_RAW"},
		{"add NET_RAW allowed", base(func(s *InstanceSpec) { s.Containers[0].Security.CapAdd = []string{"net_raw"} }), Permissions{Capabilities: []string{"CAP_NET_RAW"}}, ""},
		{"add ALL", base(func(s *InstanceSpec) { s.Containers[0].Security.CapAdd = []string{"ALL"} }), Permissions{Capabilities: []string{"NET_RAW"}}, "--allow-capability=ALL"},
		{"any capability allowed", base(func(s *InstanceSpec) { s.Containers[0].Security.CapAdd = []string{"ALL", "SYS_ADMIN"} }), Permissions{Capabilities: []string{"all"}}, ""},
		{"hostPort", base(func(s *InstanceSpec) { s.Containers[0].Ports = []Port{{Port: 8080, HostPort: 22}} }), Permissions{HostNetwork: true}, "--allow-host-port"},
		{"hostPort allowed", base(func(s *InstanceSpec) { s.Containers[0].Ports = []Port{{Port: 8080, HostPort: 22}} }), Permissions{HostPort: true}, ""},
		{"containerPort alone", base(func(s *InstanceSpec) { s.Containers[0].Ports = []Port{{Port: 8080}} }), Permissions{}, ""},
		{"localhost seccomp", base(func(s *InstanceSpec) {
			s.Containers[0].Security = Security{Seccomp: spec.SeccompLocalhost, SeccompProfile: "p.json"}
		}), Permissions{}, "--seccomp-profile-root"},
	} {
		err := c.perms.Check(c.spec)
		if c.flag == "" && err != nil || c.flag != "" && (!errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), c.flag)) {
			t.Errorf("%s: Check = %v, want %s", c.name, err, map[bool]string{true: "nil", false: "ErrForbidden naming " + c.flag}[c.flag == ""])
		}
	}
	if err := (Permissions{HostPaths: []string{"srv"}}).Validate(); err == nil {
		t.Error("a relative host path prefix validates")
	}
}

// TestResolveSecurity: the pod's and the container's securityContext become the
// container's Security, host namespaces and groups the instance's.
func TestResolveSecurity(t *testing.T) {
	set, d := resolveFixture()
	yes := true
	pod := &d.Spec.Template.Spec
	pod.HostPID, pod.HostIPC = true, true
	pod.SecurityContext = &spec.PodSecurityContext{RunAsUser: ptr[int64](1000), RunAsNonRoot: &yes, SupplementalGroups: []int64{5}, FSGroup: ptr[int64](6),
		SeccompProfile: &spec.SeccompProfile{Type: spec.SeccompLocalhost, LocalhostProfile: ptr("a/./b.json")}}
	pod.Containers[0].SecurityContext = &spec.SecurityContext{RunAsUser: ptr[int64](2000), ReadOnlyRootFilesystem: &yes,
		Capabilities: &spec.Capabilities{Add: []string{"NET_ADMIN"}, Drop: []string{"ALL"}}}
	pod.Volumes = []spec.Volume{{Name: "host", HostPath: &spec.HostPathVolumeSource{Path: "/srv/data/", Type: ptr(spec.HostPathDirectory)}}}
	pod.Containers[0].VolumeMounts = []spec.VolumeMount{{Name: "host", MountPath: "/data"}}
	s, err := Resolve(set, d, "web-0", "n", "c")
	if err != nil {
		t.Fatal(err)
	}
	want := Security{RunAsUser: ptr[int64](2000), RunAsNonRoot: true, ReadOnlyRootFilesystem: true,
		CapAdd: []string{"NET_ADMIN"}, CapDrop: []string{"ALL"}, Seccomp: spec.SeccompLocalhost, SeccompProfile: "a/b.json"}
	if got := s.Containers[0].Security; !reflect.DeepEqual(got, want) {
		t.Errorf("Security = %+v, want %+v", got, want)
	}
	if !s.HostPID || !s.HostIPC || s.HostNetwork || !slices.Equal(s.SupplementalGroups, []int64{5}) || *s.FSGroup != 6 {
		t.Errorf("instance: %+v", s)
	}
	if v := s.Volumes[0]; v.Kind != VolumeHostPath || v.HostPath != "/srv/data" || v.HostPathType != spec.HostPathDirectory || s.Containers[0].Mounts[0].ReadOnly {
		t.Errorf("hostPath volume %+v, mount %+v: want a writable bind of /srv/data", v, s.Containers[0].Mounts[0])
	}
}

// TestResolveBoundsCPU: a CPU limit past the bound validation enforces is refused rather
// than overflowing into a tiny quota (1e11 CPUs became 0.01 CPU).
func TestResolveBoundsCPU(t *testing.T) {
	set, d := resolveFixture()
	d.Spec.Template.Spec.Containers[0].Resources.Limits = map[string]spec.Quantity{spec.ResourceCPU: spec.MustQuantity("1e11")}
	if _, err := Resolve(set, d, "web-0", "n", "c"); !errors.Is(err, ErrConfig) {
		t.Errorf("cpu limit 1e11: %v, want ErrConfig", err)
	}
	d.Spec.Template.Spec.Containers[0].Resources.Limits = map[string]spec.Quantity{spec.ResourceCPU: spec.MustQuantity("100k")}
	d.Spec.Template.Spec.Containers[0].Resources.Requests = map[string]spec.Quantity{spec.ResourceCPU: spec.MustQuantity("100k")}
	s, err := Resolve(set, d, "web-0", "n", "c")
	if c := s.Containers[0]; err != nil || c.CPUQuotaMicros != 100_000*cfsPeriodMicros || c.CPUShares != maxCPUShares {
		t.Errorf("cpu 100k: quota %d, shares %d, %v", c.CPUQuotaMicros, c.CPUShares, err)
	}
}
