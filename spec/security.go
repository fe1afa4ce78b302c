package spec

import (
	"maps"
	"path"
	"slices"
	"strings"
)

// PodSecurityContext is the pod-level securityContext: defaults for every container
// (which a container's own SecurityContext overrides field by field) and the settings
// that only exist per instance (supplementalGroups, fsGroup).
type PodSecurityContext struct {
	RunAsUser    *int64 `json:"runAsUser,omitempty"`
	RunAsGroup   *int64 `json:"runAsGroup,omitempty"`
	RunAsNonRoot *bool  `json:"runAsNonRoot,omitempty"`
	// SupplementalGroups are added to every container's process, after the groups the
	// image's /etc/group gives its user.
	SupplementalGroups []int64 `json:"supplementalGroups,omitempty"`
	// FSGroup owns the Shoal-managed volumes (emptyDir, configMap, secret), which become
	// group-readable (and an emptyDir group-writable), and is added to every container's groups.
	FSGroup        *int64          `json:"fsGroup,omitempty"`
	SeccompProfile *SeccompProfile `json:"seccompProfile,omitempty"`
	// SupplementalGroupsPolicy "Merge" is what Shoal does (the image's /etc/group groups of
	// the user are kept); "Strict" is refused.
	SupplementalGroupsPolicy *string `json:"supplementalGroupsPolicy,omitempty"`
}

// SecurityContext is a container's securityContext. Unset fields take the pod's value.
type SecurityContext struct {
	RunAsUser    *int64 `json:"runAsUser,omitempty"`
	RunAsGroup   *int64 `json:"runAsGroup,omitempty"`
	RunAsNonRoot *bool  `json:"runAsNonRoot,omitempty"`
	// ReadOnlyRootFilesystem mounts the image's filesystem read-only; volumes keep their own mode.
	ReadOnlyRootFilesystem *bool `json:"readOnlyRootFilesystem,omitempty"`
	// AllowPrivilegeEscalation: only true lifts no_new_privs, which Shoal sets by default
	// (Kubernetes sets it only for false).
	AllowPrivilegeEscalation *bool         `json:"allowPrivilegeEscalation,omitempty"`
	Capabilities             *Capabilities `json:"capabilities,omitempty"`
	// Privileged runs the container with every capability, no seccomp filter and the
	// host's devices; a node refuses it unless started with --allow-privileged.
	Privileged     *bool           `json:"privileged,omitempty"`
	SeccompProfile *SeccompProfile `json:"seccompProfile,omitempty"`
	// ProcMount "Default" is what Shoal does; "Unmasked" is not honoured (a warning: /proc
	// stays masked, which only restricts).
	ProcMount *string `json:"procMount,omitempty"`
}

// Capabilities adds to and drops from the default capability set, by names such as
// NET_BIND_SERVICE (without the CAP_ prefix) or ALL. Drops apply after adds, and ALL
// applies before single names, as in containerd's CRI.
type Capabilities struct {
	Add  []string `json:"add,omitempty"`
	Drop []string `json:"drop,omitempty"`
}

// Seccomp profile types.
const (
	SeccompRuntimeDefault = "RuntimeDefault"
	SeccompUnconfined     = "Unconfined"
	SeccompLocalhost      = "Localhost"
)

// SeccompProfile chooses the seccomp filter of a container.
type SeccompProfile struct {
	Type string `json:"type"`
	// LocalhostProfile is a path relative to the node's seccomp profile directory
	// (shoal agent --seccomp-profile-root); set exactly when Type is Localhost.
	LocalhostProfile *string `json:"localhostProfile,omitempty"`
}

// Host path types, as Kubernetes names them; "" checks nothing.
const (
	HostPathUnset             = ""
	HostPathDirectoryOrCreate = "DirectoryOrCreate"
	HostPathDirectory         = "Directory"
	HostPathFileOrCreate      = "FileOrCreate"
	HostPathFile              = "File"
	HostPathSocket            = "Socket"
	HostPathCharDevice        = "CharDevice"
	HostPathBlockDevice       = "BlockDevice"
)

// HostPathVolumeSource mounts a file or directory of the node. A node refuses it unless
// started with --allow-host-path naming a directory that holds Path.
type HostPathVolumeSource struct {
	Path string  `json:"path"`
	Type *string `json:"type,omitempty"`
}

// maxID is the largest user or group ID Kubernetes (and runc) accept.
const maxID = 1<<31 - 1

// Capabilities Linux knows, without the CAP_ prefix, in kernel order.
var capabilityNames = []string{
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
	"SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
	"IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
	"SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
	"LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
	"WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
}

// CapabilityAll, in capabilities.add or drop, stands for every capability.
const CapabilityAll = "ALL"

// EffectiveSecurity is a container's security settings with the pod's defaults applied.
type EffectiveSecurity struct {
	RunAsUser, RunAsGroup    *int64
	RunAsNonRoot             bool
	ReadOnlyRootFilesystem   bool
	AllowPrivilegeEscalation bool
	Privileged               bool
	Capabilities             Capabilities
	// Seccomp is nil for the runtime's default profile.
	Seccomp *SeccompProfile
}

// Effective merges a container's securityContext over its pod's, as the kubelet does.
func Effective(pod *PodSecurityContext, c *SecurityContext) EffectiveSecurity {
	var e EffectiveSecurity
	if pod != nil {
		e.RunAsUser, e.RunAsGroup, e.Seccomp = pod.RunAsUser, pod.RunAsGroup, pod.SeccompProfile
		e.RunAsNonRoot = isTrue(pod.RunAsNonRoot)
	}
	if c == nil {
		return e
	}
	if c.RunAsUser != nil {
		e.RunAsUser = c.RunAsUser
	}
	if c.RunAsGroup != nil {
		e.RunAsGroup = c.RunAsGroup
	}
	if c.RunAsNonRoot != nil {
		e.RunAsNonRoot = *c.RunAsNonRoot
	}
	if c.SeccompProfile != nil {
		e.Seccomp = c.SeccompProfile
	}
	e.ReadOnlyRootFilesystem = isTrue(c.ReadOnlyRootFilesystem)
	e.AllowPrivilegeEscalation = isTrue(c.AllowPrivilegeEscalation)
	e.Privileged = isTrue(c.Privileged)
	if c.Capabilities != nil {
		e.Capabilities = *c.Capabilities
	}
	return e
}

func isTrue(b *bool) bool { return b != nil && *b }

func validatePodSecurity(r *report, p *fieldPath, ps *PodSpec) {
	if ps.HostUsers != nil && !*ps.HostUsers {
		r.errorf(p.child("hostUsers"), "false is not supported: Shoal does not run containers in user namespaces")
	}
	sc := ps.SecurityContext
	if sc == nil {
		return
	}
	sp := p.child("securityContext")
	if pol := sc.SupplementalGroupsPolicy; pol != nil && *pol != "Merge" {
		if *pol == "Strict" {
			r.errorf(sp.child("supplementalGroupsPolicy"), "Strict is not supported: Shoal always adds the groups the image's /etc/group gives the user (Merge)")
		} else {
			r.oneOf(sp.child("supplementalGroupsPolicy"), *pol, "Merge", "Strict")
		}
	}
	r.id(sp.child("runAsUser"), sc.RunAsUser)
	r.id(sp.child("runAsGroup"), sc.RunAsGroup)
	r.id(sp.child("fsGroup"), sc.FSGroup)
	for i := range sc.SupplementalGroups {
		r.id(sp.child("supplementalGroups").at(i), &sc.SupplementalGroups[i])
	}
	validateSeccomp(r, sp.child("seccompProfile"), sc.SeccompProfile)
	if isTrue(sc.RunAsNonRoot) && sc.RunAsUser != nil && *sc.RunAsUser == 0 {
		r.errorf(sp.child("runAsUser"), msgRootContradiction)
	}
}

// validateContainerSecurity checks container c at p of the pod spec at podPath.
func validateContainerSecurity(r *report, podPath, p *fieldPath, pod *PodSecurityContext, c *Container) {
	sp := p.child("securityContext")
	if sc := c.SecurityContext; sc != nil {
		r.id(sp.child("runAsUser"), sc.RunAsUser)
		r.id(sp.child("runAsGroup"), sc.RunAsGroup)
		validateSeccomp(r, sp.child("seccompProfile"), sc.SeccompProfile)
		if caps := sc.Capabilities; caps != nil {
			validateCapabilities(r, sp.child("capabilities").child("add"), caps.Add)
			validateCapabilities(r, sp.child("capabilities").child("drop"), caps.Drop)
		}
		if pm := sc.ProcMount; pm != nil && *pm != "Default" {
			if *pm == "Unmasked" {
				r.warnf(sp.child("procMount"), "Unmasked is not honoured by Shoal: /proc stays masked")
			} else {
				r.oneOf(sp.child("procMount"), *pm, "Default", "Unmasked")
			}
		}
		// Kubernetes refuses these two combinations: both fields would be a lie.
		if sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
			if isTrue(sc.Privileged) {
				r.errorf(sp.child("allowPrivilegeEscalation"), "cannot be false when privileged is true")
			}
			if caps := sc.Capabilities; caps != nil && slices.ContainsFunc(caps.Add, func(c string) bool { return strings.EqualFold(c, "SYS_ADMIN") }) {
				r.errorf(sp.child("allowPrivilegeEscalation"), "cannot be false when capabilities.add holds SYS_ADMIN")
			}
		}
	}
	// The kubelet refuses to start such a container; say so before commit. A contradiction
	// within the pod's own fields is reported once, by validatePodSecurity.
	sc := c.SecurityContext
	if sc == nil || sc.RunAsUser == nil && sc.RunAsNonRoot == nil {
		return
	}
	if e := Effective(pod, sc); e.RunAsNonRoot && e.RunAsUser != nil && *e.RunAsUser == 0 {
		at := sp.child("runAsUser")
		if sc.RunAsUser == nil {
			at = podPath.child("securityContext").child("runAsUser")
		}
		r.errorf(at, msgRootContradiction)
	}
}

const msgRootContradiction = "runAsUser 0 (root) contradicts runAsNonRoot: true"

// Annotations that asked for AppArmor and seccomp profiles before the securityContext
// fields existed.
const (
	annotationAppArmorPrefix    = "container.apparmor.security.beta.kubernetes.io/"
	annotationSeccompPod        = "seccomp.security.alpha.kubernetes.io/pod"
	annotationSeccompPrefix     = "container.seccomp.security.alpha.kubernetes.io/"
	annotationProfileDefault    = "runtime/default"
	annotationProfileDocker     = "docker/default"
	annotationProfileUnconfined = "unconfined"
)

// validateSecurityAnnotations treats the legacy AppArmor and seccomp annotations of a pod
// template as the fields they stand for: a profile Shoal cannot apply is an error, the
// default profile is what Shoal applies anyway, and unconfined (which only lifts a
// restriction) is a warning.
func validateSecurityAnnotations(r *report, p *fieldPath, annotations map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(annotations)) {
		v := annotations[k]
		switch {
		case strings.HasPrefix(k, annotationAppArmorPrefix) && v != annotationProfileUnconfined:
			r.errorf(p.key(k), "AppArmor profile %q not supported: Shoal does not apply AppArmor profiles, and running without it would fail open", v)
		case k != annotationSeccompPod && !strings.HasPrefix(k, annotationSeccompPrefix):
		case v == annotationProfileDefault || v == annotationProfileDocker:
		case v == annotationProfileUnconfined:
			r.warnf(p.key(k), "not honoured by Shoal: the default seccomp profile applies; use securityContext.seccompProfile")
		default:
			r.errorf(p.key(k), "seccomp profile %q not supported in an annotation: use securityContext.seccompProfile", v)
		}
	}
}

// id checks a user or group ID.
func (r *report) id(p *fieldPath, v *int64) {
	if v != nil && (*v < 0 || *v > maxID) {
		r.errorf(p, "must be between 0 and %d, inclusive, got %d", maxID, *v)
	}
}

func validateSeccomp(r *report, p *fieldPath, s *SeccompProfile) {
	if s == nil {
		return
	}
	lp := p.child("localhostProfile")
	switch s.Type {
	case SeccompRuntimeDefault, SeccompUnconfined:
		if s.LocalhostProfile != nil {
			r.errorf(lp, "must be set only when type is Localhost")
		}
	case SeccompLocalhost:
		if s.LocalhostProfile == nil || *s.LocalhostProfile == "" {
			r.errorf(lp, "required when type is Localhost")
		} else if why := relativePath(*s.LocalhostProfile); why != "" || path.Clean(*s.LocalhostProfile) == "." {
			r.errorf(lp, "invalid value %q: must be a file path relative to the node's seccomp profile directory, without '..'", *s.LocalhostProfile)
		}
	default:
		r.oneOf(p.child("type"), s.Type, SeccompRuntimeDefault, SeccompUnconfined, SeccompLocalhost)
	}
}

// validateCapabilities refuses names Linux does not know: a misspelt drop would leave the
// capability in place (Kubernetes passes it on and runc ignores it).
func validateCapabilities(r *report, p *fieldPath, names []string) {
	for i, name := range names {
		upper := strings.ToUpper(name)
		switch {
		case upper == CapabilityAll || slices.Contains(capabilityNames, upper):
		case strings.HasPrefix(upper, "CAP_") && slices.Contains(capabilityNames, upper[4:]):
			r.errorf(p.at(i), "invalid capability %q: write %s, without the CAP_ prefix, as Kubernetes expects", name, upper[4:])
		default:
			r.errorf(p.at(i), "unknown capability %q: expected ALL or a Linux capability such as NET_BIND_SERVICE", name)
		}
	}
}

var hostPathTypes = []string{
	HostPathUnset, HostPathDirectoryOrCreate, HostPathDirectory, HostPathFileOrCreate, HostPathFile,
	HostPathSocket, HostPathCharDevice, HostPathBlockDevice,
}

func validateHostPath(r *report, p *fieldPath, h *HostPathVolumeSource) {
	switch pp := p.child("path"); {
	case h.Path == "":
		r.errorf(pp, msgRequired)
	case !path.IsAbs(h.Path) || slices.Contains(strings.Split(h.Path, "/"), ".."):
		r.errorf(pp, "invalid value %q: must be an absolute path without '..'", h.Path)
	}
	if h.Type != nil && !slices.Contains(hostPathTypes, *h.Type) {
		r.errorf(p.child("type"), "unsupported value %q: supported values are %s", *h.Type, strings.Join(hostPathTypes[1:], ", "))
	}
}

// CapabilityName normalises a capability as the kernel and OCI name it: CAP_ and upper case.
func CapabilityName(name string) string {
	return "CAP_" + strings.ToUpper(name)
}
