package executor

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestSecretsNeverPrinted(t *testing.T) {
	s := InstanceSpec{
		ID: "web-0", Namespace: "shop", Workload: "web",
		Containers: []ContainerSpec{{Name: "app", Image: "web:v1", Env: []EnvVar{
			{Name: "PASSWORD", Value: "hunter2", Secret: true}, {Name: "COLOR", Value: "blue"}}}},
		Volumes: []Volume{{Name: "creds", Kind: VolumeSecret, Files: []File{{Path: "key", Mode: 0o400, Data: []byte("hunter2"), Secret: true}}}},
	}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("start", "spec", s, "container", s.Containers[0], "volume", s.Volumes[0])
	outputs := []string{
		fmt.Sprint(s), fmt.Sprintf("%v", s), fmt.Sprintf("%+v", s), fmt.Sprintf("%#v", s),
		fmt.Sprintf("%+v", s.Containers), fmt.Sprintf("%#v", s.Containers[0]), fmt.Sprintf("%v", s.Volumes),
		fmt.Sprintf("%#v", &s.Volumes[0].Files[0]), logged.String(),
	}
	for _, out := range outputs {
		if strings.Contains(out, "hunter2") {
			t.Errorf("secret printed: %s", out)
		}
	}
	if !strings.Contains(fmt.Sprintf("%+v", s.Containers[0]), "COLOR=blue") {
		t.Errorf("non-secret env hidden too: %+v", s.Containers[0])
	}
}

func TestInstanceSpecValidate(t *testing.T) {
	ok := func() InstanceSpec {
		return InstanceSpec{ID: "i", Containers: []ContainerSpec{{Name: "a", Image: "img"}}}
	}
	tests := []struct {
		name string
		edit func(*InstanceSpec)
		ok   bool
	}{
		{"valid", func(*InstanceSpec) {}, true},
		{"no ID", func(s *InstanceSpec) { s.ID = "" }, false},
		{"no containers", func(s *InstanceSpec) { s.Containers = nil }, false},
		{"unnamed container", func(s *InstanceSpec) { s.Containers[0].Name = "" }, false},
		{"repeated name", func(s *InstanceSpec) { s.Containers = append(s.Containers, s.Containers[0]) }, false},
		{"no image", func(s *InstanceSpec) { s.Containers[0].Image = "" }, false},
		{"unknown volume", func(s *InstanceSpec) { s.Containers[0].Mounts = []Mount{{Volume: "v", Path: "/v"}} }, false},
		{"ID with a slash", func(s *InstanceSpec) { s.ID = "a/b" }, false},
		{"ID ..", func(s *InstanceSpec) { s.ID = ".." }, false},
		{"container name leaving the log dir", func(s *InstanceSpec) { s.Containers[0].Name = "../../etc/x" }, false},
		{"volume name leaving the instance dir", func(s *InstanceSpec) { s.Volumes = []Volume{{Name: "..", Kind: VolumeEmptyDir}} }, false},
		{"file path leaving the volume", func(s *InstanceSpec) {
			s.Volumes = []Volume{{Name: "v", Kind: VolumeConfigMap, Files: []File{{Path: "../x"}}}}
		}, false},
		{"subPath leaving the volume", func(s *InstanceSpec) {
			s.Volumes = []Volume{{Name: "v", Kind: VolumeEmptyDir}}
			s.Containers[0].Mounts = []Mount{{Volume: "v", Path: "/v", SubPath: "../../.."}}
		}, false},
		{"relative mount path", func(s *InstanceSpec) {
			s.Volumes = []Volume{{Name: "v", Kind: VolumeEmptyDir}}
			s.Containers[0].Mounts = []Mount{{Volume: "v", Path: "v"}}
		}, false},
		{"valid probes", func(s *InstanceSpec) {
			s.Containers[0].Probes = []ProbeSpec{validProbe(ProbeLiveness), validProbe(ProbeReadiness), validProbe(ProbeStartup)}
		}, true},
		{"two readiness probes", func(s *InstanceSpec) {
			s.Containers[0].Probes = []ProbeSpec{validProbe(ProbeReadiness), validProbe(ProbeReadiness)}
		}, false},
		{"probe of no kind", func(s *InstanceSpec) { s.Containers[0].Probes = []ProbeSpec{validProbe("")} }, false},
		{"probe without handler", func(s *InstanceSpec) {
			p := validProbe(ProbeLiveness)
			p.TCPSocket = nil
			s.Containers[0].Probes = []ProbeSpec{p}
		}, false},
		{"probe with two handlers", func(s *InstanceSpec) {
			p := validProbe(ProbeLiveness)
			p.Exec = &ExecProbe{Command: []string{"true"}}
			s.Containers[0].Probes = []ProbeSpec{p}
		}, false},
		{"probe port 0", func(s *InstanceSpec) {
			p := validProbe(ProbeLiveness)
			p.TCPSocket.Port = 0
			s.Containers[0].Probes = []ProbeSpec{p}
		}, false},
		{"HTTP probe with scheme ftp", func(s *InstanceSpec) {
			p := validProbe(ProbeLiveness)
			p.TCPSocket, p.HTTPGet = nil, &HTTPProbe{Scheme: "ftp", Port: 80}
			s.Containers[0].Probes = []ProbeSpec{p}
		}, false},
		{"exec probe without command", func(s *InstanceSpec) {
			p := validProbe(ProbeLiveness)
			p.TCPSocket, p.Exec = nil, &ExecProbe{}
			s.Containers[0].Probes = []ProbeSpec{p}
		}, false},
		{"gRPC probe", func(s *InstanceSpec) {
			p := validProbe(ProbeReadiness)
			p.TCPSocket, p.GRPC = nil, &GRPCProbe{Port: 50051, Service: "cart"}
			s.Containers[0].Probes = []ProbeSpec{p}
		}, true},
		{"gRPC probe port 70000", func(s *InstanceSpec) {
			p := validProbe(ProbeReadiness)
			p.TCPSocket, p.GRPC = nil, &GRPCProbe{Port: 70000}
			s.Containers[0].Probes = []ProbeSpec{p}
		}, false},
		{"gRPC probe with a second handler", func(s *InstanceSpec) {
			p := validProbe(ProbeReadiness)
			p.GRPC = &GRPCProbe{Port: 50051}
			s.Containers[0].Probes = []ProbeSpec{p}
		}, false},
		{"valid hooks", func(s *InstanceSpec) {
			zero := time.Duration(0)
			s.Containers[0].PostStart = &Hook{Exec: &ExecProbe{Command: []string{"true"}}}
			s.Containers[0].PreStop = &Hook{Sleep: &zero}
		}, true},
		{"hook without an action", func(s *InstanceSpec) { s.Containers[0].PreStop = &Hook{} }, false},
		{"hook with two actions", func(s *InstanceSpec) {
			d := time.Second
			s.Containers[0].PreStop = &Hook{Sleep: &d, Exec: &ExecProbe{Command: []string{"true"}}}
		}, false},
		{"hook sleeping a negative time", func(s *InstanceSpec) {
			d := -time.Second
			s.Containers[0].PostStart = &Hook{Sleep: &d}
		}, false},
		{"HTTP hook to port 0", func(s *InstanceSpec) {
			s.Containers[0].PostStart = &Hook{HTTPGet: &HTTPProbe{Scheme: "http"}}
		}, false},
		{"exec hook without command", func(s *InstanceSpec) { s.Containers[0].PreStop = &Hook{Exec: &ExecProbe{}} }, false},
		{"probe with period 0", func(s *InstanceSpec) {
			p := validProbe(ProbeLiveness)
			p.Period = 0
			s.Containers[0].Probes = []ProbeSpec{p}
		}, false},
		{"probe with failure threshold 0", func(s *InstanceSpec) {
			p := validProbe(ProbeLiveness)
			p.FailureThreshold = 0
			s.Containers[0].Probes = []ProbeSpec{p}
		}, false},
		{"init containers first", func(s *InstanceSpec) {
			s.Containers = append([]ContainerSpec{{Name: "i1", Image: "img", Init: 1}, {Name: "i2", Image: "img", Init: 2, Sidecar: true}}, s.Containers...)
		}, true},
		{"init container after an app container", func(s *InstanceSpec) {
			s.Containers = append(s.Containers, ContainerSpec{Name: "i1", Image: "img", Init: 1})
		}, false},
		{"init containers out of order", func(s *InstanceSpec) {
			s.Containers = append([]ContainerSpec{{Name: "i2", Image: "img", Init: 2}, {Name: "i1", Image: "img", Init: 1}}, s.Containers...)
		}, false},
		{"sidecar that is not an init container", func(s *InstanceSpec) { s.Containers[0].Sidecar = true }, false},
		{"init container with a probe", func(s *InstanceSpec) {
			s.Containers = append([]ContainerSpec{{Name: "i1", Image: "img", Init: 1, Probes: []ProbeSpec{validProbe(ProbeReadiness)}}}, s.Containers...)
		}, false},
		{"known volume", func(s *InstanceSpec) {
			s.Volumes = []Volume{{Name: "v", Kind: VolumeEmptyDir}}
			s.Containers[0].Mounts = []Mount{{Volume: "v", Path: "/v"}}
		}, true},
	}
	for _, tt := range tests {
		s := ok()
		tt.edit(&s)
		err := s.Validate()
		if tt.ok != (err == nil) || err != nil && !errors.Is(err, ErrInvalidSpec) {
			t.Errorf("%s: Validate = %v", tt.name, err)
		}
	}
}

// validProbe is a TCP probe of the given kind with Kubernetes' default timings.
func validProbe(kind ProbeKind) ProbeSpec {
	return ProbeSpec{Kind: kind, TCPSocket: &TCPProbe{Port: 80}, Timeout: time.Second, Period: 10 * time.Second,
		SuccessThreshold: 1, FailureThreshold: 3}
}
