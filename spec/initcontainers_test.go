package spec

import (
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

func mapFS(name, content string) fstest.MapFS {
	return fstest.MapFS{name: {Data: []byte(content)}}
}

func mustQuantity(t *testing.T, s string) Quantity {
	t.Helper()
	q, err := ParseQuantity(s)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// withInit adds an initContainers list (from line 17) to minimalDeployment's pod spec.
func withInit(lines ...string) string {
	return minimalDeployment + indent(6, append([]string{"initContainers:"}, lines...))
}

func TestValidateInitContainers(t *testing.T) {
	const ic = "spec.template.spec.initContainers"
	probe := []string{"  readinessProbe:", "    tcpSocket: {port: 80}"}
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"init container and sidecar", withInit("- {name: setup, image: busybox:1.36}", "- name: proxy", "  image: envoy:1", "  restartPolicy: Always",
			"  ports: [{containerPort: 9901}]", "  readinessProbe:", "    tcpSocket: {port: 9901}"), nil},
		{"probe on an init container", withInit(append([]string{"- name: setup", "  image: busybox:1.36"}, probe...)...), []string{
			`t.yaml:20: ` + ic + `[0].readinessProbe: may not be set for init containers without restartPolicy Always: an init container runs to completion`}},
		{"liveness and startup probes on an init container", withInit("- name: setup", "  image: busybox:1.36",
			"  livenessProbe: {exec: {command: [\"true\"]}}", "  startupProbe: {exec: {command: [\"true\"]}}"), []string{
			`t.yaml:20: ` + ic + `[0].livenessProbe: may not be set for init containers without restartPolicy Always: an init container runs to completion`,
			`t.yaml:21: ` + ic + `[0].startupProbe: may not be set for init containers without restartPolicy Always: an init container runs to completion`}},
		{"name used by an app container", withInit("- {name: web, image: busybox:1.36}"), []string{
			`t.yaml:15: spec.template.spec.containers[0].name: duplicate container name "web"`}},
		{"two init containers of one name", withInit("- {name: a, image: busybox:1.36}", "- {name: a, image: busybox:1.36}"), []string{
			`t.yaml:19: ` + ic + `[1].name: duplicate container name "a"`}},
		{"sidecar port used by the app", strings.Replace(minimalDeployment, "image: nginx:1.25\n", "image: nginx:1.25\n        ports: [{containerPort: 80}]\n", 1) +
			indent(6, []string{"initContainers:", "- name: proxy", "  image: envoy:1", "  restartPolicy: Always", "  ports: [{containerPort: 80}]"}), []string{
			`t.yaml:17: spec.template.spec.containers[0].ports[0].containerPort: duplicate port 80/TCP in the instance`}},
		{"restartPolicy other than Always", withInit("- name: setup", "  image: busybox:1.36", "  restartPolicy: OnFailure"), []string{
			`t.yaml:20: ` + ic + `[0].restartPolicy: unsupported value "OnFailure": supported values are Always`}},
		{"restartPolicy on an app container", withContainer("restartPolicy: Always"), []string{
			`t.yaml:17: spec.template.spec.containers[0].restartPolicy: may not be set for non-init containers (only an init container may be a sidecar, with restartPolicy Always)`}},
		{"init container checked as a container", withInit("- name: Setup", "  image: busybox:1.36", "  securityContext: {runAsUser: -1}"), []string{
			`t.yaml:18: ` + ic + `[0].name: invalid value "Setup": must be a lowercase RFC 1123 label: at most 63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit`,
			`t.yaml:20: ` + ic + `[0].securityContext.runAsUser: must be between 0 and 2147483647, inclusive, got -1`}},
		{"missing ConfigMap of an init container", withInit("- name: setup", "  image: busybox:1.36", "  envFrom: [{configMapRef: {name: setup-env}}]"), []string{
			`t.yaml:20: ` + ic + `[0].envFrom[0].configMapRef.name: configmap "setup-env" not found in namespace "default" of this commit: add it to the repository or mark the reference optional: true`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, diags := Load(mapFS("t.yaml", tt.yaml), LoadOptions{})
			if got := diagStrings(diags); !slices.Equal(got, tt.want) {
				t.Errorf("diagnostics:\n got  %s\n want %s", strings.Join(got, "\n      "), strings.Join(tt.want, "\n      "))
			}
		})
	}
}

func TestPodRequests(t *testing.T) {
	c := func(cpu, mem string, sidecar bool) Container {
		ct := Container{Resources: Resources{Requests: map[string]Quantity{}}}
		if cpu != "" {
			ct.Resources.Requests[ResourceCPU] = mustQuantity(t, cpu)
		}
		if mem != "" {
			ct.Resources.Requests[ResourceMemory] = mustQuantity(t, mem)
		}
		if sidecar {
			ct.RestartPolicy = ptr(ContainerRestartAlways)
		}
		return ct
	}
	tests := []struct {
		name       string
		init, apps []Container
		cpu, mem   int64
	}{
		{"apps only add up", nil, []Container{c("100m", "64Mi", false), c("200m", "64Mi", false)}, 300, 128 << 20},
		// Kubernetes' own example: the largest init container wins a resource the apps need less of.
		{"init container larger than the apps", []Container{c("2", "1Gi", false), c("2", "3Gi", false)},
			[]Container{c("2", "1Gi", false), c("1", "1Gi", false)}, 3000, 3 << 30},
		{"sidecars add to the apps", []Container{c("500m", "100Mi", true)}, []Container{c("1", "200Mi", false)}, 1500, 300 << 20},
		// The init container after the sidecar runs beside it: 1 + 2 CPUs.
		{"init container after a sidecar runs beside it", []Container{c("1", "", true), c("2", "", false)}, []Container{c("500m", "", false)}, 3000, 0},
		{"init container before a sidecar runs alone", []Container{c("2", "", false), c("1", "", true)}, []Container{c("500m", "", false)}, 2000, 0},
		{"limit only counts as request", nil, []Container{{Resources: Resources{Limits: map[string]Quantity{ResourceCPU: mustQuantity(t, "250m")}}}}, 250, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := PodSpec{InitContainers: tt.init, Containers: tt.apps}
			if cpu, mem := ps.PodRequests(); cpu != tt.cpu || mem != tt.mem {
				t.Errorf("PodRequests = %d mCPU, %d bytes; want %d, %d", cpu, mem, tt.cpu, tt.mem)
			}
		})
	}
}

func TestInitContainersInHash(t *testing.T) {
	load := func(yaml string) string {
		set, diags := Load(mapFS("t.yaml", yaml), LoadOptions{})
		if diags.HasErrors() {
			t.Fatal(diags.Error())
		}
		return InstanceHash(set, set.Deployments[0])
	}
	base := load(minimalDeployment)
	one := load(withInit("- {name: setup, image: busybox:1.36}"))
	other := load(withInit("- {name: setup, image: busybox:1.37}"))
	sidecar := load(withInit("- {name: setup, image: busybox:1.36, restartPolicy: Always}"))
	if base == one || one == other || one == sidecar {
		t.Errorf("hashes do not tell the specs apart: none %s, init %s, other image %s, sidecar %s", base, one, other, sidecar)
	}
}

// TestHostPortsOfSidecars: a sidecar's ports are the instance's, on its node as well.
func TestHostPortsOfSidecars(t *testing.T) {
	ps := PodSpec{
		InitContainers: []Container{{Name: "proxy", RestartPolicy: ptr(ContainerRestartAlways), Ports: []ContainerPort{{ContainerPort: 9901, HostPort: 19901}}}},
		Containers:     []Container{{Name: "app", Ports: []ContainerPort{{ContainerPort: 8080}}}},
	}
	if got, want := ps.HostPorts(false), []HostPort{{8080, ProtocolTCP}, {9901, ProtocolTCP}}; !slices.Equal(got, want) {
		t.Errorf("on the node's network: %v, want %v", got, want)
	}
	if got, want := ps.HostPorts(true), []HostPort{{19901, ProtocolTCP}}; !slices.Equal(got, want) {
		t.Errorf("with a pod network: %v, want %v", got, want)
	}
}
