package executor

import (
	"errors"
	"io/fs"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/shoalhq/shoal/spec"
)

// downwardFixture is resolveFixture's web with labels, annotations, two containers with
// resources, and the options that give node facts.
func downwardFixture() (*spec.Set, *spec.Deployment, []ResolveOption) {
	set, d := resolveFixture()
	d.Spec.Template.Metadata = spec.ObjectMeta{
		Labels:      map[string]string{"app": "web", "tier": "front"},
		Annotations: map[string]string{"example.com/team": `ops "blue"`},
	}
	d.Spec.Template.Spec.Containers[0].Resources = spec.Resources{
		Limits:   map[string]spec.Quantity{"memory": spec.MustQuantity("64Mi"), "cpu": spec.MustQuantity("250m")},
		Requests: map[string]spec.Quantity{"memory": spec.MustQuantity("1000k"), "cpu": spec.MustQuantity("100m")},
	}
	d.Spec.Template.Spec.Containers = append(d.Spec.Template.Spec.Containers, spec.Container{Name: "side", Image: "side:v1"})
	opts := []ResolveOption{WithPodIP("10.244.1.7"), WithHostIP("192.0.2.10"),
		WithNodeAllocatable(NodeAllocatable{MilliCPU: 2000, MemoryBytes: 4 << 30, EphemeralStorage: 20 << 30})}
	return set, d, opts
}

func fieldEnv(name, path string) spec.EnvVar {
	return spec.EnvVar{Name: name, ValueFrom: &spec.EnvVarSource{FieldRef: &spec.ObjectFieldSelector{FieldPath: path}}}
}

func resourceEnv(name, container, resource, divisor string) spec.EnvVar {
	f := &spec.ResourceFieldSelector{ContainerName: container, Resource: resource}
	if divisor != "" {
		f.Divisor = ptr(spec.MustQuantity(divisor))
	}
	return spec.EnvVar{Name: name, ValueFrom: &spec.EnvVarSource{ResourceFieldRef: f}}
}

func TestDownwardEnv(t *testing.T) {
	set, d, opts := downwardFixture()
	d.Spec.Template.Spec.Containers[0].Env = []spec.EnvVar{
		fieldEnv("NAME", "metadata.name"),
		fieldEnv("NS", "metadata.namespace"),
		fieldEnv("UID", "metadata.uid"),
		fieldEnv("APP", "metadata.labels['app']"),
		fieldEnv("NOPE", "metadata.labels['nope']"),
		fieldEnv("TEAM", "metadata.annotations['example.com/team']"),
		fieldEnv("NODE", "spec.nodeName"),
		fieldEnv("SA", "spec.serviceAccountName"),
		fieldEnv("HOST", "status.hostIP"),
		fieldEnv("HOSTS", "status.hostIPs"),
		fieldEnv("POD", "status.podIP"),
		fieldEnv("PODS", "status.podIPs"),
		resourceEnv("MEM_MI", "", "limits.memory", "1Mi"),
		resourceEnv("MEM_REQ_MI", "", "requests.memory", "1Mi"), // 1000k is 0.95Mi: rounded up
		resourceEnv("CPU", "", "limits.cpu", ""),                // 250m is 0.25 CPU: rounded up to 1
		resourceEnv("CPU_M", "", "limits.cpu", "1m"),
		resourceEnv("REQ_CPU_M", "", "requests.cpu", "1m"),
		resourceEnv("SIDE_CPU", "side", "limits.cpu", ""),         // no limit: node allocatable
		resourceEnv("SIDE_MEM", "side", "limits.memory", "1Gi"),   // no limit: node allocatable
		resourceEnv("SIDE_REQ", "side", "requests.memory", ""),    // no request, no limit: 0
		resourceEnv("DISK", "", "limits.ephemeral-storage", "1G"), // no limit: node's, 21.47G
	}
	s, err := Resolve(set, d, "web-abc-0", "node-a", "c0ffee", opts...)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range s.Containers[0].Env {
		got[e.Name] = e.Value
	}
	want := map[string]string{
		"NAME": "web-abc-0", "NS": "shop", "UID": InstanceUID("web-abc-0"), "APP": "web", "NOPE": "",
		"TEAM": `ops "blue"`, "NODE": "node-a", "SA": "default",
		"HOST": "192.0.2.10", "HOSTS": "192.0.2.10", "POD": "10.244.1.7", "PODS": "10.244.1.7",
		"MEM_MI": "64", "MEM_REQ_MI": "1", "CPU": "1", "CPU_M": "250", "REQ_CPU_M": "100",
		"SIDE_CPU": "2", "SIDE_MEM": "4", "SIDE_REQ": "0", "DISK": "22",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("env\n got %v\nwant %v", got, want)
	}
}

func TestInstanceUID(t *testing.T) {
	a, b := InstanceUID("web-abc-0"), InstanceUID("web-abc-1")
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(a) {
		t.Errorf("uid %q is not a version 5 UUID", a)
	}
	if a == b || a != InstanceUID("web-abc-0") {
		t.Errorf("uids %q and %q: want stable per ID and distinct across IDs", a, b)
	}
}

func TestDownwardEnvErrors(t *testing.T) {
	tests := []struct {
		name string
		env  spec.EnvVar
		opts []ResolveOption
		want string
	}{
		{"labels map in env", fieldEnv("L", "metadata.labels"), nil, `fieldRef "metadata.labels" is not supported here`},
		{"unknown path", fieldEnv("L", "spec.hostname"), nil, `supported are metadata.name, metadata.namespace, metadata.uid, spec.nodeName`},
		{"hostIP unknown", fieldEnv("H", "status.hostIP"), nil, "status.hostIP needs the node's address"},
		{"unknown container", resourceEnv("R", "nope", "limits.cpu", ""), nil, `container "nope" is not one of the instance's containers`},
		{"unknown resource", resourceEnv("R", "", "limits.gpu", ""), nil, `resource "limits.gpu" is not supported`},
		{"disk unknown", resourceEnv("R", "", "limits.ephemeral-storage", ""), nil, "allocatable ephemeral storage is unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, d, _ := downwardFixture()
			d.Spec.Template.Spec.Containers[0].Env = []spec.EnvVar{tt.env}
			_, err := Resolve(set, d, "web-abc-0", "node-a", "c0ffee", tt.opts...)
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want ErrConfig containing %q", err, tt.want)
			}
		})
	}
}

func TestDownwardAndProjectedVolumes(t *testing.T) {
	set, d, opts := downwardFixture()
	items := []spec.DownwardAPIVolumeFile{
		{Path: "labels", FieldRef: &spec.ObjectFieldSelector{FieldPath: "metadata.labels"}},
		{Path: "annotations", FieldRef: &spec.ObjectFieldSelector{FieldPath: "metadata.annotations"}},
		{Path: "sub/app", Mode: ptr(int32(0o400)), FieldRef: &spec.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}},
		{Path: "uid", FieldRef: &spec.ObjectFieldSelector{FieldPath: "metadata.uid"}},
		{Path: "mem", ResourceFieldRef: &spec.ResourceFieldSelector{ContainerName: "app", Resource: "limits.memory", Divisor: ptr(spec.MustQuantity("1Mi"))}},
	}
	d.Spec.Template.Spec.Volumes = []spec.Volume{
		{Name: "info", DownwardAPI: &spec.DownwardAPIVolumeSource{Items: items, DefaultMode: ptr(int32(0o440))}},
		{Name: "all", Projected: &spec.ProjectedVolumeSource{Sources: []spec.VolumeProjection{
			{ConfigMap: &spec.ConfigMapProjection{Name: "cfg", Items: []spec.KeyToPath{{Key: "color", Path: "color"}}}},
			{Secret: &spec.SecretProjection{Name: "creds", Items: []spec.KeyToPath{{Key: "user", Path: "creds/user"}}}},
			{Secret: &spec.SecretProjection{Name: "absent", Optional: ptr(true)}},
			{DownwardAPI: &spec.DownwardAPIProjection{Items: items[3:4]}},
			{ServiceAccountToken: &spec.ServiceAccountTokenProjection{Path: "token"}},
		}}},
	}
	d.Spec.Template.Spec.Containers[0].VolumeMounts = []spec.VolumeMount{{Name: "info", MountPath: "/info"}, {Name: "all", MountPath: "/all"}}
	s, err := Resolve(set, d, "web-abc-0", "node-a", "c0ffee", opts...)
	if err != nil {
		t.Fatal(err)
	}
	type file struct {
		Path   string
		Mode   fs.FileMode
		Data   string
		Secret bool
	}
	files := func(v Volume) []file {
		var out []file
		for _, f := range v.Files {
			out = append(out, file{f.Path, f.Mode, string(f.Data), f.Secret})
		}
		return out
	}
	uid := InstanceUID("web-abc-0")
	if got, want := files(s.Volumes[0]), []file{
		{"labels", 0o440, "app=\"web\"\ntier=\"front\"", false},
		{"annotations", 0o440, `example.com/team="ops \"blue\""`, false},
		{"sub/app", 0o400, "web", false},
		{"uid", 0o440, uid, false},
		{"mem", 0o440, "64", false},
	}; !reflect.DeepEqual(got, want) {
		t.Errorf("downwardAPI files\n got %v\nwant %v", got, want)
	}
	if got, want := files(s.Volumes[1]), []file{
		{"color", 0o644, "blue", false},
		{"creds/user", 0o400, "admin", true},
		{"uid", 0o644, uid, false},
	}; !reflect.DeepEqual(got, want) {
		t.Errorf("projected files\n got %v\nwant %v", got, want)
	}
	if s.Volumes[0].onTmpfs() || !s.Volumes[1].onTmpfs() {
		t.Errorf("tmpfs: downwardAPI %v, projected with a secret %v; want false, true", s.Volumes[0].onTmpfs(), s.Volumes[1].onTmpfs())
	}
	for _, m := range s.Containers[0].Mounts {
		if !m.ReadOnly {
			t.Errorf("mount %s is writable; Kubernetes mounts downwardAPI and projected volumes read-only", m.Path)
		}
	}
}

func TestProjectedVolumeErrors(t *testing.T) {
	tests := []struct {
		name    string
		sources []spec.VolumeProjection
		want    string
	}{
		{"two sources write one path", []spec.VolumeProjection{
			{ConfigMap: &spec.ConfigMapProjection{Name: "cfg", Items: []spec.KeyToPath{{Key: "color", Path: "x"}}}},
			{Secret: &spec.SecretProjection{Name: "creds", Items: []spec.KeyToPath{{Key: "user", Path: "x"}}}},
		}, `projected: two sources write "x"`},
		{"missing secret", []spec.VolumeProjection{{Secret: &spec.SecretProjection{Name: "db-creds"}}},
			`secret "db-creds" not found in namespace "shop" of this commit: add it to the repository (encrypted secrets are a coming feature) or mark the reference optional: true`},
		{"missing key", []spec.VolumeProjection{{ConfigMap: &spec.ConfigMapProjection{Name: "cfg", Items: []spec.KeyToPath{{Key: "nope", Path: "x"}}}}},
			`key "nope" of configmap "cfg" not found`},
		{"path leaving the volume", []spec.VolumeProjection{{DownwardAPI: &spec.DownwardAPIProjection{Items: []spec.DownwardAPIVolumeFile{
			{Path: "../x", FieldRef: &spec.ObjectFieldSelector{FieldPath: "metadata.name"}}}}}}, `path "../x" leaves the volume`},
		{"node field in a volume", []spec.VolumeProjection{{DownwardAPI: &spec.DownwardAPIProjection{Items: []spec.DownwardAPIVolumeFile{
			{Path: "node", FieldRef: &spec.ObjectFieldSelector{FieldPath: "spec.nodeName"}}}}}}, `fieldRef "spec.nodeName" is not supported here`},
		{"resource without a container", []spec.VolumeProjection{{DownwardAPI: &spec.DownwardAPIProjection{Items: []spec.DownwardAPIVolumeFile{
			{Path: "cpu", ResourceFieldRef: &spec.ResourceFieldSelector{Resource: "limits.cpu"}}}}}}, "resourceFieldRef must name its container"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, d, opts := downwardFixture()
			d.Spec.Template.Spec.Volumes = []spec.Volume{{Name: "v", Projected: &spec.ProjectedVolumeSource{Sources: tt.sources}}}
			_, err := Resolve(set, d, "web-abc-0", "node-a", "c0ffee", opts...)
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want ErrConfig containing %q", err, tt.want)
			}
		})
	}
}
