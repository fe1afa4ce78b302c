package executor

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/shoalhq/shoal/spec"
)

// resolveFixture is a set with one ConfigMap and one Secret in "shop", and a Deployment
// "web" of one container that the cases edit.
func resolveFixture() (*spec.Set, *spec.Deployment) {
	set := &spec.Set{
		ConfigMaps: []*spec.ConfigMap{{
			Metadata:   spec.ObjectMeta{Name: "cfg", Namespace: "shop"},
			Data:       map[string]string{"color": "blue", "size": "L", "bad key": "x", "app.conf": "a=1\n"},
			BinaryData: map[string][]byte{"logo.png": {0x89, 'P', 'N', 'G'}},
		}},
		Secrets: []*spec.Secret{{
			Metadata: spec.ObjectMeta{Name: "creds", Namespace: "shop"},
			Data:     map[string][]byte{"password": []byte("hunter2"), "user": []byte("admin")},
		}},
	}
	d := &spec.Deployment{
		Metadata: spec.ObjectMeta{Name: "web", Namespace: "shop"},
		Spec: spec.DeploymentSpec{Template: spec.PodTemplate{Spec: spec.PodSpec{
			Containers: []spec.Container{{Name: "app", Image: "registry.local:5000/web:v1"}},
		}}},
	}
	return set, d
}

func ptr[T any](v T) *T { return &v }

func mustQuantity(s string) spec.Quantity {
	q, err := spec.ParseQuantity(s)
	if err != nil {
		panic(err)
	}
	return q
}

func TestResolve(t *testing.T) {
	env := func(s InstanceSpec) any { return s.Containers[0].Env }
	tests := []struct {
		name    string
		edit    func(set *spec.Set, d *spec.Deployment)
		opts    []ResolveOption
		got     func(InstanceSpec) any
		want    any
		wantErr error
	}{
		{
			name: "defaults",
			got:  func(s InstanceSpec) any { s.SpecHash = ""; return s },
			want: InstanceSpec{
				ID: "web-abc-0", Namespace: "shop", Workload: "web", Revision: "c0ffee", Node: "node-a",
				GracePeriod: 30 * time.Second,
				Containers:  []ContainerSpec{{Name: "app", Image: "registry.local:5000/web:v1", PullPolicy: PullIfNotPresent}},
			},
		},
		{
			name: "spec hash is spec.InstanceHash",
			got:  func(s InstanceSpec) any { return s.SpecHash != "" && s.SpecHash == spec.InstanceHash(resolveFixture()) },
			want: true,
		},
		{
			name: "namespace defaults and grace period comes from the template",
			edit: func(_ *spec.Set, d *spec.Deployment) {
				d.Metadata.Namespace = ""
				d.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr(int64(5))
			},
			got:  func(s InstanceSpec) any { return []any{s.Namespace, s.GracePeriod} },
			want: []any{"default", 5 * time.Second},
		},
		{
			name: "latest and untagged images are always pulled",
			edit: func(_ *spec.Set, d *spec.Deployment) {
				c := d.Spec.Template.Spec.Containers[0]
				d.Spec.Template.Spec.Containers = []spec.Container{c, c, c, c}
				for i, img := range []string{"web:latest", "localhost:5000/web", "web@sha256:00", "web:v1"} {
					d.Spec.Template.Spec.Containers[i].Name = string(rune('a' + i))
					d.Spec.Template.Spec.Containers[i].Image = img
				}
				d.Spec.Template.Spec.Containers[3].ImagePullPolicy = spec.PullNever
			},
			got: func(s InstanceSpec) any {
				var out []PullPolicy
				for _, c := range s.Containers {
					out = append(out, c.PullPolicy)
				}
				return out
			},
			want: []PullPolicy{PullAlways, PullAlways, PullIfNotPresent, PullNever},
		},
		{
			name: "env values expand earlier variables only, as Kubernetes does",
			edit: func(_ *spec.Set, d *spec.Deployment) {
				d.Spec.Template.Spec.Containers[0].Env = []spec.EnvVar{
					{Name: "HOST", Value: "db"},
					{Name: "URL", Value: "pg://$(HOST):$(PORT)/$$(HOST)"},
					{Name: "PORT", Value: "5432"},
				}
			},
			got:  env,
			want: []EnvVar{{Name: "HOST", Value: "db"}, {Name: "URL", Value: "pg://db:$(PORT)/$(HOST)"}, {Name: "PORT", Value: "5432"}},
		},
		{
			name: "valueFrom ConfigMap, Secret and fields",
			edit: func(_ *spec.Set, d *spec.Deployment) {
				d.Spec.Template.Spec.Containers[0].Env = []spec.EnvVar{
					{Name: "COLOR", ValueFrom: &spec.EnvVarSource{ConfigMapKeyRef: &spec.KeySelector{Name: "cfg", Key: "color"}}},
					{Name: "PASSWORD", ValueFrom: &spec.EnvVarSource{SecretKeyRef: &spec.KeySelector{Name: "creds", Key: "password"}}},
					{Name: "POD", ValueFrom: &spec.EnvVarSource{FieldRef: &spec.ObjectFieldSelector{FieldPath: "metadata.name"}}},
					{Name: "NS", ValueFrom: &spec.EnvVarSource{FieldRef: &spec.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
					{Name: "NODE", ValueFrom: &spec.EnvVarSource{FieldRef: &spec.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
					{Name: "IP", ValueFrom: &spec.EnvVarSource{FieldRef: &spec.ObjectFieldSelector{FieldPath: "status.podIP"}}},
				}
			},
			opts: []ResolveOption{WithPodIP("10.0.0.7")},
			got:  env,
			want: []EnvVar{
				{Name: "COLOR", Value: "blue"}, {Name: "PASSWORD", Value: "hunter2", Secret: true},
				{Name: "POD", Value: "web-abc-0"}, {Name: "NS", Value: "shop"}, {Name: "NODE", Value: "node-a"}, {Name: "IP", Value: "10.0.0.7"},
			},
		},
		{
			name: "status.podIP without WithPodIP",
			edit: func(_ *spec.Set, d *spec.Deployment) {
				d.Spec.Template.Spec.Containers[0].Env = []spec.EnvVar{
					{Name: "IP", ValueFrom: &spec.EnvVarSource{FieldRef: &spec.ObjectFieldSelector{FieldPath: "status.podIP"}}}}
			},
			wantErr: ErrConfig,
		},
		{
			name: "unsupported field path",
			edit: func(_ *spec.Set, d *spec.Deployment) {
				d.Spec.Template.Spec.Containers[0].Env = []spec.EnvVar{
					{Name: "L", ValueFrom: &spec.EnvVarSource{FieldRef: &spec.ObjectFieldSelector{FieldPath: "metadata.labels"}}}}
			},
			wantErr: ErrConfig,
		},
		{
			name: "envFrom in key order with prefix, invalid names skipped, env overrides in place",
			edit: func(_ *spec.Set, d *spec.Deployment) {
				c := &d.Spec.Template.Spec.Containers[0]
				c.EnvFrom = []spec.EnvFromSource{
					{ConfigMapRef: &spec.LocalObjRef{Name: "cfg"}, Prefix: "CFG_"},
					{SecretRef: &spec.LocalObjRef{Name: "creds"}},
				}
				c.Env = []spec.EnvVar{{Name: "CFG_color", Value: "red-$(user)"}}
			},
			got: env,
			want: []EnvVar{
				{Name: "CFG_app.conf", Value: "a=1\n"}, {Name: "CFG_color", Value: "red-admin"}, {Name: "CFG_size", Value: "L"},
				{Name: "password", Value: "hunter2", Secret: true}, {Name: "user", Value: "admin", Secret: true},
			},
		},
		{
			name: "missing ConfigMap",
			edit: func(_ *spec.Set, d *spec.Deployment) {
				d.Spec.Template.Spec.Containers[0].Env = []spec.EnvVar{
					{Name: "X", ValueFrom: &spec.EnvVarSource{ConfigMapKeyRef: &spec.KeySelector{Name: "nope", Key: "k"}}}}
			},
			wantErr: ErrConfig,
		},
		{
			name: "missing Secret key",
			edit: func(_ *spec.Set, d *spec.Deployment) {
				d.Spec.Template.Spec.Containers[0].Env = []spec.EnvVar{
					{Name: "X", ValueFrom: &spec.EnvVarSource{SecretKeyRef: &spec.KeySelector{Name: "creds", Key: "nope"}}}}
			},
			wantErr: ErrConfig,
		},
		{
			name: "ConfigMap of another namespace is not visible",
			edit: func(set *spec.Set, d *spec.Deployment) {
				d.Metadata.Namespace = "other"
				d.Spec.Template.Spec.Containers[0].EnvFrom = []spec.EnvFromSource{{ConfigMapRef: &spec.LocalObjRef{Name: "cfg"}}}
			},
			wantErr: ErrConfig,
		},
		{
			name: "optional references that are missing are left out",
			edit: func(_ *spec.Set, d *spec.Deployment) {
				c := &d.Spec.Template.Spec.Containers[0]
				c.Env = []spec.EnvVar{
					{Name: "A", ValueFrom: &spec.EnvVarSource{ConfigMapKeyRef: &spec.KeySelector{Name: "nope", Key: "k", Optional: ptr(true)}}},
					{Name: "B", ValueFrom: &spec.EnvVarSource{SecretKeyRef: &spec.KeySelector{Name: "creds", Key: "nope", Optional: ptr(true)}}},
					{Name: "C", Value: "c"},
				}
				c.EnvFrom = []spec.EnvFromSource{{SecretRef: &spec.LocalObjRef{Name: "nope", Optional: ptr(true)}}}
			},
			got:  env,
			want: []EnvVar{{Name: "C", Value: "c"}},
		},
		{
			name: "command and args expand the container's environment",
			edit: func(_ *spec.Set, d *spec.Deployment) {
				c := &d.Spec.Template.Spec.Containers[0]
				c.Env = []spec.EnvVar{{Name: "PORT", Value: "80"}}
				c.Command = []string{"/bin/serve", "--port=$(PORT)"}
				c.Args = []string{"$(UNSET)", "$$(PORT)"}
			},
			got:  func(s InstanceSpec) any { return [][]string{s.Containers[0].Command, s.Containers[0].Args} },
			want: [][]string{{"/bin/serve", "--port=80"}, {"$(UNSET)", "$(PORT)"}},
		},
		{
			name: "limits and requests",
			edit: func(_ *spec.Set, d *spec.Deployment) {
				d.Spec.Template.Spec.Containers[0].Resources = spec.Resources{
					Limits:   map[string]spec.Quantity{"memory": spec.MustQuantity("64Mi"), "cpu": spec.MustQuantity("500m")},
					Requests: map[string]spec.Quantity{"cpu": spec.MustQuantity("250m")},
				}
			},
			got: func(s InstanceSpec) any {
				c := s.Containers[0]
				return []int64{c.MemoryLimitBytes, c.CPUQuotaMicros, int64(c.CPUPeriodMicros), int64(c.CPUShares)}
			},
			want: []int64{64 << 20, 50_000, 100_000, 256},
		},
		{
			name: "tiny CPU values are raised to what the kernel accepts",
			edit: func(_ *spec.Set, d *spec.Deployment) {
				d.Spec.Template.Spec.Containers[0].Resources = spec.Resources{
					Limits:   map[string]spec.Quantity{"cpu": spec.MustQuantity("1m")},
					Requests: map[string]spec.Quantity{"cpu": spec.MustQuantity("1m")},
				}
			},
			got:  func(s InstanceSpec) any { c := s.Containers[0]; return []int64{c.CPUQuotaMicros, int64(c.CPUShares)} },
			want: []int64{1000, 2},
		},
		{
			name: "ports default to TCP",
			edit: func(_ *spec.Set, d *spec.Deployment) {
				d.Spec.Template.Spec.Containers[0].Ports = []spec.ContainerPort{{Name: "http", ContainerPort: 8080}, {ContainerPort: 53, Protocol: "UDP"}}
			},
			got:  func(s InstanceSpec) any { return s.Containers[0].Ports },
			want: []Port{{Name: "http", Port: 8080, Protocol: "TCP"}, {Port: 53, Protocol: "UDP"}},
		},
		{
			name: "volumes and mounts",
			edit: func(_ *spec.Set, d *spec.Deployment) {
				pod := &d.Spec.Template.Spec
				pod.Volumes = []spec.Volume{
					{Name: "all", ConfigMap: &spec.ConfigMapVolumeSource{Name: "cfg"}},
					{Name: "some", ConfigMap: &spec.ConfigMapVolumeSource{Name: "cfg", DefaultMode: ptr(int32(0o600)),
						Items: []spec.KeyToPath{{Key: "color", Path: "etc/color"}, {Key: "size", Path: "size", Mode: ptr(int32(0o640))}}}},
					{Name: "secret", Secret: &spec.SecretVolumeSource{SecretName: "creds", Items: []spec.KeyToPath{{Key: "user", Path: "user"}}}},
					{Name: "ram", EmptyDir: &spec.EmptyDirVolumeSource{Medium: "Memory", SizeLimit: ptr(spec.MustQuantity("1Mi"))}},
				}
				pod.Containers[0].VolumeMounts = []spec.VolumeMount{
					{Name: "some", MountPath: "/etc/app/"},
					{Name: "secret", MountPath: "/run/secrets"},
					{Name: "ram", MountPath: "/cache", SubPath: "a/b"},
				}
			},
			got: func(s InstanceSpec) any { return []any{s.Volumes, s.Containers[0].Mounts} },
			want: []any{
				[]Volume{
					{Name: "all", Kind: VolumeConfigMap, Files: []File{
						{Path: "app.conf", Mode: 0o644, Data: []byte("a=1\n")}, {Path: "bad key", Mode: 0o644, Data: []byte("x")},
						{Path: "color", Mode: 0o644, Data: []byte("blue")}, {Path: "logo.png", Mode: 0o644, Data: []byte{0x89, 'P', 'N', 'G'}},
						{Path: "size", Mode: 0o644, Data: []byte("L")}}},
					{Name: "some", Kind: VolumeConfigMap, Files: []File{
						{Path: "etc/color", Mode: 0o600, Data: []byte("blue")}, {Path: "size", Mode: 0o640, Data: []byte("L")}}},
					{Name: "secret", Kind: VolumeSecret, Files: []File{{Path: "user", Mode: 0o400, Data: []byte("admin"), Secret: true}}},
					{Name: "ram", Kind: VolumeEmptyDir, Memory: true, SizeLimitBytes: 1 << 20},
				},
				[]Mount{
					{Volume: "some", Path: "/etc/app", ReadOnly: true},
					{Volume: "secret", Path: "/run/secrets", ReadOnly: true},
					{Volume: "ram", Path: "/cache", SubPath: "a/b"},
				},
			},
		},
		{
			name: "probes: named ports resolved, seconds as durations, literal env expanded in exec",
			edit: func(_ *spec.Set, d *spec.Deployment) {
				c := &d.Spec.Template.Spec.Containers[0]
				c.Ports = []spec.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "admin", ContainerPort: 9090}}
				c.Env = []spec.EnvVar{{Name: "URL", Value: "http://localhost:8080/healthz"},
					{Name: "PASSWORD", ValueFrom: &spec.EnvVarSource{SecretKeyRef: &spec.KeySelector{Name: "creds", Key: "password"}}}}
				c.LivenessProbe = &spec.Probe{Exec: &spec.ExecAction{Command: []string{"/hello", "-check", "$(URL)", "$(PASSWORD)"}}}
				c.ReadinessProbe = &spec.Probe{HTTPGet: &spec.HTTPGetAction{Path: "/readyz", Port: spec.FromString("http"),
					HTTPHeaders: []spec.HTTPHeader{{Name: "Host", Value: "web.local"}, {Name: "x-probe", Value: "1"}}}}
				c.StartupProbe = &spec.Probe{TCPSocket: &spec.TCPSocketAction{Port: spec.FromInt(9090), Host: "10.0.0.9"},
					InitialDelaySeconds: 2, PeriodSeconds: 1, FailureThreshold: 30}
				for _, p := range []*spec.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
					p.TimeoutSeconds, p.SuccessThreshold = 1, 1
					if p.PeriodSeconds == 0 {
						p.PeriodSeconds, p.FailureThreshold = 10, 3
					}
				}
			},
			got: func(s InstanceSpec) any { return s.Containers[0].Probes },
			want: []ProbeSpec{
				{Kind: ProbeLiveness, Exec: &ExecProbe{Command: []string{"/hello", "-check", "http://localhost:8080/healthz", ""}},
					Timeout: time.Second, Period: 10 * time.Second, SuccessThreshold: 1, FailureThreshold: 3},
				{Kind: ProbeReadiness, HTTPGet: &HTTPProbe{Scheme: "http", Port: 8080, Path: "/readyz",
					Headers: http.Header{"Host": {"web.local"}, "X-Probe": {"1"}}},
					Timeout: time.Second, Period: 10 * time.Second, SuccessThreshold: 1, FailureThreshold: 3},
				{Kind: ProbeStartup, TCPSocket: &TCPProbe{Host: "10.0.0.9", Port: 9090},
					InitialDelay: 2 * time.Second, Timeout: time.Second, Period: time.Second, SuccessThreshold: 1, FailureThreshold: 30},
			},
		},
		{
			name: "gRPC probe and hooks: named ports resolved, literal env expanded in exec",
			edit: func(_ *spec.Set, d *spec.Deployment) {
				c := &d.Spec.Template.Spec.Containers[0]
				c.Ports = []spec.ContainerPort{{Name: "admin", ContainerPort: 9000}}
				c.Env = []spec.EnvVar{{Name: "WHO", Value: "me"}}
				c.ReadinessProbe = &spec.Probe{GRPC: &spec.GRPCAction{Port: 50051, Service: ptr("cart")},
					TimeoutSeconds: 1, PeriodSeconds: 2, SuccessThreshold: 1, FailureThreshold: 3}
				c.Lifecycle = &spec.Lifecycle{
					PostStart: &spec.LifecycleHandler{Exec: &spec.ExecAction{Command: []string{"/warm", "$(WHO)"}}},
					PreStop:   &spec.LifecycleHandler{HTTPGet: &spec.HTTPGetAction{Path: "/drain", Port: spec.FromString("admin"), Scheme: "HTTP"}},
				}
			},
			got: func(s InstanceSpec) any {
				c := s.Containers[0]
				return []any{c.Probes[0].GRPC, c.PostStart, c.PreStop}
			},
			want: []any{&GRPCProbe{Port: 50051, Service: "cart"},
				&Hook{Exec: &ExecProbe{Command: []string{"/warm", "me"}}},
				&Hook{HTTPGet: &HTTPProbe{Scheme: "http", Port: 9000, Path: "/drain"}}},
		},
		{
			name: "a sleep hook",
			edit: func(_ *spec.Set, d *spec.Deployment) {
				d.Spec.Template.Spec.Containers[0].Lifecycle = &spec.Lifecycle{PreStop: &spec.LifecycleHandler{Sleep: &spec.SleepAction{Seconds: 5}}}
			},
			got:  func(s InstanceSpec) any { return *s.Containers[0].PreStop.Sleep },
			want: 5 * time.Second,
		},
		{
			name: "a hook naming a port the container does not have",
			edit: func(_ *spec.Set, d *spec.Deployment) {
				d.Spec.Template.Spec.Containers[0].Lifecycle = &spec.Lifecycle{PostStart: &spec.LifecycleHandler{
					HTTPGet: &spec.HTTPGetAction{Port: spec.FromString("admin"), Scheme: "HTTP"}}}
			},
			wantErr: ErrConfig,
		},
		{
			name: "memory emptyDir sizes: sizeLimit, capped by the instance's memory limit",
			edit: func(_ *spec.Set, d *spec.Deployment) {
				ps := &d.Spec.Template.Spec
				ps.Containers[0].Resources.Limits = map[string]spec.Quantity{spec.ResourceMemory: mustQuantity("48Mi")}
				ps.Containers = append(ps.Containers, spec.Container{Name: "side", Image: "side:v1",
					Resources: spec.Resources{Limits: map[string]spec.Quantity{spec.ResourceMemory: mustQuantity("16Mi")}}})
				ps.Volumes = []spec.Volume{
					{Name: "big", EmptyDir: &spec.EmptyDirVolumeSource{Medium: "Memory", SizeLimit: ptr(mustQuantity("1Gi"))}},
					{Name: "small", EmptyDir: &spec.EmptyDirVolumeSource{Medium: "Memory", SizeLimit: ptr(mustQuantity("8Mi"))}},
					{Name: "unsized", EmptyDir: &spec.EmptyDirVolumeSource{Medium: "Memory"}},
					{Name: "disk", EmptyDir: &spec.EmptyDirVolumeSource{SizeLimit: ptr(mustQuantity("1Gi"))}},
				}
			},
			got: func(s InstanceSpec) any {
				var sizes []int64
				for _, v := range s.Volumes {
					sizes = append(sizes, v.SizeLimitBytes)
				}
				return sizes
			},
			want: []int64{64 << 20, 8 << 20, 64 << 20, 1 << 30},
		},
		{
			name: "memory emptyDir without a memory limit on every container keeps its sizeLimit or the kernel's default",
			edit: func(_ *spec.Set, d *spec.Deployment) {
				ps := &d.Spec.Template.Spec
				ps.Containers[0].Resources.Limits = map[string]spec.Quantity{spec.ResourceMemory: mustQuantity("48Mi")}
				ps.Containers = append(ps.Containers, spec.Container{Name: "side", Image: "side:v1"})
				ps.Volumes = []spec.Volume{
					{Name: "big", EmptyDir: &spec.EmptyDirVolumeSource{Medium: "Memory", SizeLimit: ptr(mustQuantity("1Gi"))}},
					{Name: "unsized", EmptyDir: &spec.EmptyDirVolumeSource{Medium: "Memory"}},
				}
			},
			got: func(s InstanceSpec) any {
				return []int64{s.Volumes[0].SizeLimitBytes, s.Volumes[1].SizeLimitBytes}
			},
			want: []int64{1 << 30, 0},
		},
		{
			name: "a probe naming a port the container does not have",
			edit: func(_ *spec.Set, d *spec.Deployment) {
				d.Spec.Template.Spec.Containers[0].ReadinessProbe = &spec.Probe{TCPSocket: &spec.TCPSocketAction{Port: spec.FromString("http")},
					TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 3}
			},
			wantErr: ErrConfig,
		},
		{
			name: "a probe left without defaults",
			edit: func(_ *spec.Set, d *spec.Deployment) {
				d.Spec.Template.Spec.Containers[0].LivenessProbe = &spec.Probe{TCPSocket: &spec.TCPSocketAction{Port: spec.FromInt(80)}}
			},
			wantErr: ErrInvalidSpec,
		},
		{
			name: "resolv.conf given",
			opts: []ResolveOption{WithResolvConf([]byte("nameserver 10.0.0.1\n"))},
			got:  func(s InstanceSpec) any { return string(s.ResolvConf) },
			want: "nameserver 10.0.0.1\n",
		},
		{
			name: "an item path leaving the volume",
			edit: func(_ *spec.Set, d *spec.Deployment) {
				d.Spec.Template.Spec.Volumes = []spec.Volume{{Name: "v", ConfigMap: &spec.ConfigMapVolumeSource{Name: "cfg",
					Items: []spec.KeyToPath{{Key: "color", Path: "../../etc/passwd"}}}}}
			},
			wantErr: ErrConfig,
		},
		{
			name: "a subPath leaving the volume",
			edit: func(_ *spec.Set, d *spec.Deployment) {
				d.Spec.Template.Spec.Volumes = []spec.Volume{{Name: "v", EmptyDir: &spec.EmptyDirVolumeSource{}}}
				d.Spec.Template.Spec.Containers[0].VolumeMounts = []spec.VolumeMount{{Name: "v", MountPath: "/x", SubPath: "../y"}}
			},
			wantErr: ErrConfig,
		},
		{
			name: "a mount of an unknown volume",
			edit: func(_ *spec.Set, d *spec.Deployment) {
				d.Spec.Template.Spec.Containers[0].VolumeMounts = []spec.VolumeMount{{Name: "nope", MountPath: "/x"}}
			},
			wantErr: ErrConfig,
		},
		{
			name: "a relative mount path",
			edit: func(_ *spec.Set, d *spec.Deployment) {
				d.Spec.Template.Spec.Volumes = []spec.Volume{{Name: "v", EmptyDir: &spec.EmptyDirVolumeSource{}}}
				d.Spec.Template.Spec.Containers[0].VolumeMounts = []spec.VolumeMount{{Name: "v", MountPath: "x"}}
			},
			wantErr: ErrConfig,
		},
		{
			name: "a missing secret volume, optional or not",
			edit: func(_ *spec.Set, d *spec.Deployment) {
				d.Spec.Template.Spec.Volumes = []spec.Volume{
					{Name: "opt", Secret: &spec.SecretVolumeSource{SecretName: "nope", Optional: ptr(true)}},
					{Name: "req", Secret: &spec.SecretVolumeSource{SecretName: "nope"}},
				}
			},
			wantErr: ErrConfig,
		},
		{
			name: "Secret stringData wins over data",
			edit: func(set *spec.Set, d *spec.Deployment) {
				set.Secrets[0].StringData = map[string]string{"password": "plain"}
				d.Spec.Template.Spec.Containers[0].Env = []spec.EnvVar{
					{Name: "P", ValueFrom: &spec.EnvVarSource{SecretKeyRef: &spec.KeySelector{Name: "creds", Key: "password"}}}}
			},
			got:  env,
			want: []EnvVar{{Name: "P", Value: "plain", Secret: true}},
		},
		{
			name: "a container without an image",
			edit: func(_ *spec.Set, d *spec.Deployment) {
				d.Spec.Template.Spec.Containers[0].Image = ""
			},
			wantErr: ErrInvalidSpec,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, d := resolveFixture()
			if tt.edit != nil {
				tt.edit(set, d)
			}
			got, err := Resolve(set, d, "web-abc-0", "node-a", "c0ffee", tt.opts...)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if g := tt.got(got); !reflect.DeepEqual(g, tt.want) {
				t.Errorf("got  %+v\nwant %+v", g, tt.want)
			}
		})
	}
}

func TestResolveIsPure(t *testing.T) {
	set, d := resolveFixture()
	d.Spec.Template.Spec.Containers[0].EnvFrom = []spec.EnvFromSource{{ConfigMapRef: &spec.LocalObjRef{Name: "cfg"}}}
	d.Spec.Template.Spec.Volumes = []spec.Volume{{Name: "v", ConfigMap: &spec.ConfigMapVolumeSource{Name: "cfg"}}}
	first, err := Resolve(set, d, "i", "n", "r")
	if err != nil {
		t.Fatal(err)
	}
	for range 20 { // map iteration order differs from run to run; the result must not
		again, _ := Resolve(set, d, "i", "n", "r")
		if !reflect.DeepEqual(first, again) {
			t.Fatalf("Resolve gave two results:\n%+v\n%+v", first, again)
		}
	}
}

func TestResolveErrorNamesWhatIsMissing(t *testing.T) {
	set, d := resolveFixture()
	d.Spec.Template.Spec.Containers[0].Env = []spec.EnvVar{
		{Name: "X", ValueFrom: &spec.EnvVarSource{SecretKeyRef: &spec.KeySelector{Name: "creds", Key: "token"}}}}
	_, err := Resolve(set, d, "i", "n", "r")
	want := `shop/web: container app: env X: instance config cannot be resolved: key "token" of secret "creds" not found in namespace "shop" of this commit: add the key to the Secret or mark the reference optional: true`
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
}

func TestIsEnvVarName(t *testing.T) {
	for name, want := range map[string]bool{
		"PATH": true, "my.var": true, "-x": true, "_1": true, "a1": true,
		"": false, "1a": false, "bad key": false, "é": false, "a=b": false,
	} {
		if got := isEnvVarName(name); got != want {
			t.Errorf("isEnvVarName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestFileModesAreMasked(t *testing.T) {
	if got := fileMode(ptr(int32(0o104755)), 0o644); got != fs.FileMode(0o755) {
		t.Errorf("fileMode kept bits beyond the permissions: %v", got)
	}
}

// TestResolveInitContainers: init containers come first, in their order, with their place
// and whether each is a sidecar; they are resolved as app containers are.
func TestResolveInitContainers(t *testing.T) {
	set, d := resolveFixture()
	always := spec.ContainerRestartAlways
	d.Spec.Template.Spec.InitContainers = []spec.Container{
		{Name: "setup", Image: "tools:1", Env: []spec.EnvVar{{Name: "X", ValueFrom: &spec.EnvVarSource{ConfigMapKeyRef: &spec.KeySelector{Name: "cfg", Key: "color"}}}}},
		{Name: "proxy", Image: "proxy:1", RestartPolicy: &always},
	}
	s, err := Resolve(set, d, "i", "n", "r")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range s.Containers {
		got = append(got, fmt.Sprintf("%s init=%d sidecar=%v", c.Name, c.Init, c.Sidecar))
	}
	want := []string{"setup init=1 sidecar=false", "proxy init=2 sidecar=true", "app init=0 sidecar=false"}
	if !slices.Equal(got, want) {
		t.Errorf("containers %q, want %q", got, want)
	}
	if e := s.Containers[0].Env; len(e) != 1 || e[0].Value == "" {
		t.Errorf("the init container's env from a ConfigMap: %v", e)
	}
}
