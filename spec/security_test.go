package spec

import (
	"slices"
	"strings"
	"testing"
)

// TestSecurityContextFailsClosed checks that every restrictive field Shoal cannot honour
// is an error naming file, line and field (never a warning that lets the workload run
// without it), that the fields Shoal honours are checked as Kubernetes checks them, and
// that a harmless unhonoured field stays a warning.
func TestSecurityContextFailsClosed(t *testing.T) {
	const sc = container + ".securityContext"
	const psc = podSpec + ".securityContext"
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"honoured fields load", withContainer("securityContext:", "  runAsUser: 1000", "  runAsGroup: 1000", "  runAsNonRoot: true",
			"  readOnlyRootFilesystem: true", "  allowPrivilegeEscalation: false", "  capabilities: {drop: [ALL], add: [net_bind_service]}",
			"  seccompProfile: {type: RuntimeDefault}", "  privileged: false", "  procMount: Default") +
			indent(6, []string{"securityContext:", "  fsGroup: 2000", "  supplementalGroups: [3000]", "  seccompProfile: {type: Localhost, localhostProfile: profiles/strict.json}"}), nil},
		{"container seLinuxOptions", withContainer("securityContext:", "  seLinuxOptions: {level: s0:c1}"), []string{
			`t.yaml:18: ` + sc + `.seLinuxOptions: field not supported: Shoal does not apply SELinux labels, and running without it would fail open`}},
		{"container appArmorProfile", withContainer("securityContext:", "  appArmorProfile: {type: RuntimeDefault}"), []string{
			`t.yaml:18: ` + sc + `.appArmorProfile: field not supported: Shoal does not apply AppArmor profiles, and running without it would fail open`}},
		{"container windowsOptions", withContainer("securityContext:", "  windowsOptions: {runAsUserName: app}"), []string{
			`t.yaml:18: ` + sc + `.windowsOptions: field not supported: Shoal runs Linux containers only, and running without it would fail open`}},
		{"pod seLinuxOptions and sysctls", withPodSpec("securityContext:", "  seLinuxOptions: {level: s0:c1}", "  sysctls: [{name: net.core.somaxconn, value: '1024'}]"), []string{
			`t.yaml:18: ` + psc + `.seLinuxOptions: field not supported: Shoal does not apply SELinux labels, and running without it would fail open`,
			`t.yaml:19: ` + psc + `.sysctls: field not supported: Shoal does not set sysctls, and running without it would fail open`}},
		{"runtimeClassName", withPodSpec("runtimeClassName: gvisor"), []string{
			`t.yaml:17: ` + podSpec + `.runtimeClassName: field not supported: Shoal runs every container with runc; it cannot give the sandbox a runtime class asks for, and running without it would fail open`}},
		{"user namespaces", withPodSpec("hostUsers: false"), []string{
			`t.yaml:17: ` + podSpec + `.hostUsers: false is not supported: Shoal does not run containers in user namespaces`}},
		{"strict supplemental groups", withPodSpec("securityContext:", "  supplementalGroupsPolicy: Strict"), []string{
			`t.yaml:18: ` + psc + `.supplementalGroupsPolicy: Strict is not supported: Shoal always adds the groups the image's /etc/group gives the user (Merge)`}},
		{"unmasked proc is only a warning", withContainer("securityContext:", "  procMount: Unmasked"), []string{
			`t.yaml:18: ` + sc + `.procMount: warning: Unmasked is not honoured by Shoal: /proc stays masked`}},
		{"harmless unhonoured field is a warning", withPodSpec("securityContext:", "  fsGroupChangePolicy: OnRootMismatch"), []string{
			`t.yaml:18: ` + psc + `.fsGroupChangePolicy: warning: not honoured by Shoal`}},
		{"misspelt and prefixed capabilities", withContainer("securityContext:", "  capabilities:", "    drop: [NET_RAWW, CAP_NET_RAW]", "    add: [all]"), []string{
			`t.yaml:19: ` + sc + `.capabilities.drop[0]: unknown capability "NET_RAWW": expected ALL or a Linux capability such as NET_BIND_SERVICE`,
			`t.yaml:19: ` + sc + `.capabilities.drop[1]: invalid capability "CAP_NET_RAW": write NET_RAW, without the CAP_ prefix, as Kubernetes expects`}},
		{"ids out of range", withContainer("securityContext:", "  runAsUser: -1") + indent(6, []string{"securityContext:", "  fsGroup: 4294967296", "  supplementalGroups: [1, -5]"}), []string{
			`t.yaml:18: ` + sc + `.runAsUser: must be between 0 and 2147483647, inclusive, got -1`,
			`t.yaml:20: ` + psc + `.fsGroup: must be between 0 and 2147483647, inclusive, got 4294967296`,
			`t.yaml:21: ` + psc + `.supplementalGroups[1]: must be between 0 and 2147483647, inclusive, got -5`}},
		{"root with runAsNonRoot from the pod, once for two containers", withPodSpec("- {name: side, image: x:1}", "securityContext:", "  runAsNonRoot: true", "  runAsUser: 0"), []string{
			`t.yaml:20: ` + psc + `.runAsUser: runAsUser 0 (root) contradicts runAsNonRoot: true`}},
		{"container non-root flag over a pod root user", withContainer("securityContext:", "  runAsNonRoot: true") + indent(6, []string{"securityContext:", "  runAsUser: 0"}), []string{
			`t.yaml:20: ` + psc + `.runAsUser: runAsUser 0 (root) contradicts runAsNonRoot: true`}},
		{"container root overrides pod non-root user", withContainer("securityContext:", "  runAsUser: 0") + indent(6, []string{"securityContext:", "  runAsNonRoot: true", "  runAsUser: 1000"}), []string{
			`t.yaml:18: ` + sc + `.runAsUser: runAsUser 0 (root) contradicts runAsNonRoot: true`}},
		{"privilege escalation contradictions", withContainer("securityContext:", "  privileged: true", "  allowPrivilegeEscalation: false", "  capabilities: {add: [SYS_ADMIN]}"), []string{
			`t.yaml:19: ` + sc + `.allowPrivilegeEscalation: cannot be false when privileged is true`,
			`t.yaml:19: ` + sc + `.allowPrivilegeEscalation: cannot be false when capabilities.add holds SYS_ADMIN`}},
		{"seccomp profiles", withContainer("securityContext:", "  seccompProfile: {type: Localhost, localhostProfile: ../../etc/shadow}") +
			indent(6, []string{"securityContext:", "  seccompProfile: {type: unconfined}"}), []string{
			`t.yaml:18: ` + sc + `.seccompProfile.localhostProfile: invalid value "../../etc/shadow": must be a file path relative to the node's seccomp profile directory, without '..'`,
			`t.yaml:20: ` + psc + `.seccompProfile.type: unsupported value "unconfined": supported values are RuntimeDefault, Unconfined, Localhost`}},
		{"localhost profile missing or absolute", withContainer("securityContext:", "  seccompProfile: {type: Localhost}") +
			indent(6, []string{"securityContext:", "  seccompProfile: {type: Localhost, localhostProfile: /etc/p.json}"}), []string{
			`t.yaml:18: ` + sc + `.seccompProfile.localhostProfile: required when type is Localhost`,
			`t.yaml:20: ` + psc + `.seccompProfile.localhostProfile: invalid value "/etc/p.json": must be a file path relative to the node's seccomp profile directory, without '..'`}},
		{"legacy annotations", strings.Replace(minimalDeployment, "      labels:\n        app: web\n", "      labels:\n        app: web\n      annotations:\n"+
			"        container.apparmor.security.beta.kubernetes.io/web: runtime/default\n"+
			"        container.apparmor.security.beta.kubernetes.io/side: unconfined\n"+
			"        seccomp.security.alpha.kubernetes.io/pod: runtime/default\n"+
			"        container.seccomp.security.alpha.kubernetes.io/web: localhost/strict.json\n"+
			"        container.seccomp.security.alpha.kubernetes.io/side: unconfined\n", 1), []string{
			`t.yaml:14: spec.template.metadata.annotations[container.apparmor.security.beta.kubernetes.io/web]: AppArmor profile "runtime/default" not supported: Shoal does not apply AppArmor profiles, and running without it would fail open`,
			`t.yaml:17: spec.template.metadata.annotations[container.seccomp.security.alpha.kubernetes.io/web]: seccomp profile "localhost/strict.json" not supported in an annotation: use securityContext.seccompProfile`,
			`t.yaml:18: spec.template.metadata.annotations[container.seccomp.security.alpha.kubernetes.io/side]: warning: not honoured by Shoal: the default seccomp profile applies; use securityContext.seccompProfile`}},
		{"host namespaces and hostPath load (the node decides)", withPodSpec("hostNetwork: true", "hostPID: true", "hostIPC: true", "volumes:", "- {name: data, hostPath: {path: /srv/data, type: Directory}}"), nil},
		{"bad hostPath", withPodSpec("volumes:", "- {name: a, hostPath: {path: srv}}", "- {name: b, hostPath: {path: /srv/../etc, type: Dir}}"), []string{
			`t.yaml:18: ` + podSpec + `.volumes[0].hostPath.path: invalid value "srv": must be an absolute path without '..'`,
			`t.yaml:19: ` + podSpec + `.volumes[1].hostPath.path: invalid value "/srv/../etc": must be an absolute path without '..'`,
			`t.yaml:19: ` + podSpec + `.volumes[1].hostPath.type: unsupported value "Dir": supported values are DirectoryOrCreate, Directory, FileOrCreate, File, Socket, CharDevice, BlockDevice`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, diags := Decode("t.yaml", []byte(tt.yaml), LoadOptions{})
			if got := diagStrings(diags); !slices.Equal(got, tt.want) {
				t.Errorf("diagnostics:\n got  %s\n want %s", strings.Join(got, "\n      "), strings.Join(tt.want, "\n      "))
			}
		})
	}
}

// TestQuantityBounds: limits.cpu 1e11 used to become a CFS quota of 0.01 CPU (the
// microsecond figure overflowed), and larger values overflowed outright. Quantities
// above the bounds are refused with their field.
func TestQuantityBounds(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"at the bounds", withContainer("resources:", "  limits: {cpu: 100k, memory: 1Pi}"), nil},
		{"cpu 1e11", withContainer("resources:", "  limits:", "    cpu: 1e11"), []string{
			`t.yaml:19: ` + container + `.resources.limits.cpu: 1e11 is more than the limit of 100000 CPUs`}},
		{"cpu 1e14 request", withContainer("resources:", "  requests:", "    cpu: 1e14"), []string{
			`t.yaml:19: ` + container + `.resources.requests.cpu: 1e14 is more than the limit of 100000 CPUs`}},
		{"memory (a request under its limit is bounded by it)", withContainer("resources:", "  requests:", "    memory: 2Pi", "  limits:", "    memory: 4Pi"), []string{
			`t.yaml:21: ` + container + `.resources.limits.memory: 4Pi is more than the limit of 1Pi bytes`}},
		{"memory at the int64 limit (rounding up must not wrap it negative)", withContainer("resources:", "  limits:", "    memory: 9223372036854775807m"), []string{
			`t.yaml:19: ` + container + `.resources.limits.memory: 9223372036854775807m is more than the limit of 1Pi bytes`}},
		{"emptyDir size", withPodSpec("volumes:", "- {name: tmp, emptyDir: {sizeLimit: 3Pi}}"), []string{
			`t.yaml:18: ` + podSpec + `.volumes[0].emptyDir.sizeLimit: 3Pi is more than the limit of 1Pi bytes`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, diags := Decode("t.yaml", []byte(tt.yaml), LoadOptions{})
			if got := diagStrings(diags); !slices.Equal(got, tt.want) {
				t.Errorf("diagnostics:\n got  %s\n want %s", strings.Join(got, "\n      "), strings.Join(tt.want, "\n      "))
			}
		})
	}
}

// TestEffectiveSecurity: a container's fields override its pod's one by one.
func TestEffectiveSecurity(t *testing.T) {
	u := func(v int64) *int64 { return &v }
	yes, no := true, false
	pod := &PodSecurityContext{RunAsUser: u(1000), RunAsGroup: u(1000), RunAsNonRoot: &yes, SeccompProfile: &SeccompProfile{Type: SeccompUnconfined}}
	e := Effective(pod, &SecurityContext{RunAsUser: u(2000), RunAsNonRoot: &no})
	if *e.RunAsUser != 2000 || *e.RunAsGroup != 1000 || e.RunAsNonRoot || e.Seccomp.Type != SeccompUnconfined {
		t.Errorf("Effective = %+v", e)
	}
	if e := Effective(nil, nil); e.RunAsUser != nil || e.Seccomp != nil || e.Privileged || e.AllowPrivilegeEscalation {
		t.Errorf("Effective(nil, nil) = %+v, want all defaults", e)
	}
}
