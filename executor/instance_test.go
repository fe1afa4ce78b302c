package executor

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
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
