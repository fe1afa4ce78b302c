package executor

import (
	"context"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/contrib/seccomp"
	"github.com/containerd/containerd/oci"
	"github.com/containerd/containerd/pkg/cap"
	securejoin "github.com/cyphar/filepath-securejoin"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/shoalhq/shoal/spec"
)

// The default sandbox of every container, unless its securityContext asks otherwise:
//   - the capabilities in DefaultCapabilities (containerd's and Docker's default set
//     without CAP_NET_RAW), in the bounding, effective and permitted sets, none ambient;
//   - the runtime's default seccomp profile (containerd's, which is Docker's and
//     Kubernetes' RuntimeDefault), widened for the capabilities the container holds;
//   - no_new_privs;
//   - containerd's masked and read-only /proc and /sys paths, and a cgroup device list
//     that allows only the standard devices.
//
// docs/security-context.md is the user's account of it.

// DefaultCapabilities is the capability set of a container that asks for no other:
// Docker's and containerd's default set without CAP_NET_RAW, which let any container on
// the node's network open AF_PACKET sockets and read every packet of the node.
var DefaultCapabilities = []string{
	"CAP_AUDIT_WRITE",
	"CAP_CHOWN",
	"CAP_DAC_OVERRIDE",
	"CAP_FOWNER",
	"CAP_FSETID",
	"CAP_KILL",
	"CAP_MKNOD",
	"CAP_NET_BIND_SERVICE",
	"CAP_SETFCAP",
	"CAP_SETGID",
	"CAP_SETPCAP",
	"CAP_SETUID",
	"CAP_SYS_CHROOT",
}

// ErrForbidden is an instance asking for something this node does not allow (privileged,
// a host namespace, a host path, a capability beyond the default set, an Unconfined or
// Localhost seccomp profile). The message names the flag that would allow it.
var ErrForbidden = errors.New("not allowed on this node")

// Security is how one container is confined, resolved from its pod's and its own
// securityContext. The zero value is the default sandbox.
type Security struct {
	// RunAsUser and RunAsGroup override the image's user and its primary group.
	RunAsUser, RunAsGroup *int64
	// RunAsNonRoot refuses to start the container when its user resolves to uid 0.
	RunAsNonRoot bool
	// ReadOnlyRootFilesystem mounts the image's filesystem read-only.
	ReadOnlyRootFilesystem bool
	// AllowPrivilegeEscalation lifts no_new_privs (setuid binaries and file capabilities work).
	AllowPrivilegeEscalation bool
	// Privileged gives every capability, every host device, no seccomp filter, no masked paths.
	Privileged bool
	// CapAdd and CapDrop are capability names as manifests write them (NET_ADMIN, ALL).
	CapAdd, CapDrop []string
	// Seccomp is spec.SeccompRuntimeDefault (or ""), spec.SeccompUnconfined or
	// spec.SeccompLocalhost with SeccompProfile, a path relative to the node's profile directory.
	Seccomp        string
	SeccompProfile string
}

func (s Security) validate() error {
	switch s.Seccomp {
	case "", spec.SeccompRuntimeDefault, spec.SeccompUnconfined:
		if s.SeccompProfile != "" {
			return fmt.Errorf("seccomp profile %q without type Localhost", s.SeccompProfile)
		}
	case spec.SeccompLocalhost:
		if !isLocalPath(s.SeccompProfile) {
			return fmt.Errorf("seccomp profile %q must be a relative path inside the profile directory", s.SeccompProfile)
		}
	default:
		return fmt.Errorf("unknown seccomp profile type %q", s.Seccomp)
	}
	for _, id := range []*int64{s.RunAsUser, s.RunAsGroup} {
		if id != nil && (*id < 0 || *id > 1<<31-1) {
			return fmt.Errorf("user or group ID %d out of range", *id)
		}
	}
	return nil
}

// securityOf resolves a container's Security from the pod's and its own securityContext.
func securityOf(pod *spec.PodSecurityContext, c *spec.SecurityContext) Security {
	e := spec.Effective(pod, c)
	out := Security{
		RunAsUser:                e.RunAsUser,
		RunAsGroup:               e.RunAsGroup,
		RunAsNonRoot:             e.RunAsNonRoot,
		ReadOnlyRootFilesystem:   e.ReadOnlyRootFilesystem,
		AllowPrivilegeEscalation: e.AllowPrivilegeEscalation,
		Privileged:               e.Privileged,
		CapAdd:                   e.Capabilities.Add,
		CapDrop:                  e.Capabilities.Drop,
	}
	if e.Seccomp != nil {
		out.Seccomp = e.Seccomp.Type
		if e.Seccomp.LocalhostProfile != nil {
			out.SeccompProfile = path.Clean(*e.Seccomp.LocalhostProfile)
		}
	}
	return out
}

// Permissions is what a node lets an instance ask for beyond the default sandbox. The
// zero value allows nothing more: what a container may then ask for is about what
// Kubernetes' Baseline Pod Security Standard allows (no privileged mode, host namespaces,
// host paths or Unconfined seccomp, no capability beyond the default set), minus the
// NET_RAW that Baseline still grants.
type Permissions struct {
	// Privileged allows securityContext.privileged.
	Privileged bool
	// HostNetwork, HostPID and HostIPC allow the pod fields of those names.
	HostNetwork, HostPID, HostIPC bool
	// HostPaths are the directories (absolute, clean) whose contents hostPath volumes may
	// mount; "/" allows any path.
	HostPaths []string
	// SeccompProfileRoot is the directory Localhost seccomp profiles are read from; empty
	// refuses them.
	SeccompProfileRoot string
	// SeccompUnconfined allows seccompProfile type Unconfined.
	SeccompUnconfined bool
	// Capabilities lists the capabilities (NET_RAW or CAP_NET_RAW, any case) that
	// capabilities.add may name beyond DefaultCapabilities; "ALL" allows any, and ALL itself.
	Capabilities []string
	// HostPort allows container ports with a hostPort: with a pod network, a port of the
	// node forwarded to the instance, which could take any port of the node (its SSH
	// among them), so Kubernetes' Baseline Pod Security Standard forbids them too.
	HostPort bool
}

// Validate checks that every path is absolute.
func (p Permissions) Validate() error {
	for _, dir := range append([]string{p.SeccompProfileRoot}, p.HostPaths...) {
		if dir != "" && !filepath.IsAbs(dir) {
			return fmt.Errorf("permissions: %q is not an absolute path", dir)
		}
	}
	if slices.Contains(p.HostPaths, "") {
		return errors.New("permissions: empty host path prefix")
	}
	return nil
}

// Check returns an error wrapping ErrForbidden that names the first thing s asks for
// that p does not allow, and the agent flag that would allow it.
func (p Permissions) Check(s *InstanceSpec) error {
	forbid := func(what, flag string) error {
		return fmt.Errorf("%w: %s (start the agent with %s to allow it)", ErrForbidden, what, flag)
	}
	for _, f := range []struct {
		asked, allowed bool
		field, flag    string
	}{
		{s.HostNetwork, p.HostNetwork, "hostNetwork", "--allow-host-network"},
		{s.HostPID, p.HostPID, "hostPID", "--allow-host-pid"},
		{s.HostIPC, p.HostIPC, "hostIPC", "--allow-host-ipc"},
	} {
		if f.asked && !f.allowed {
			return forbid(f.field, f.flag)
		}
	}
	for _, v := range s.Volumes {
		if v.Kind == VolumeHostPath && p.hostPathPrefix(v.HostPath) == "" {
			return forbid(fmt.Sprintf("hostPath volume %s (%s)", v.Name, v.HostPath), "--allow-host-path=DIR")
		}
	}
	for _, c := range s.Containers {
		for _, port := range c.Ports {
			if port.HostPort != 0 && !p.HostPort {
				return forbid(fmt.Sprintf("hostPort %d of container %s", port.HostPort, c.Name), "--allow-host-port")
			}
		}
		if c.Security.Privileged && !p.Privileged {
			return forbid("privileged container "+c.Name, "--allow-privileged")
		}
		switch {
		case c.Security.Seccomp == spec.SeccompLocalhost && p.SeccompProfileRoot == "":
			return forbid("Localhost seccomp profile of container "+c.Name, "--seccomp-profile-root=DIR")
		case c.Security.Seccomp == spec.SeccompUnconfined && !p.SeccompUnconfined:
			return forbid("Unconfined seccomp profile of container "+c.Name, "--allow-unconfined-seccomp")
		}
		for _, name := range c.Security.CapAdd {
			if !p.allowsCapability(name) {
				name = strings.ToUpper(name)
				return forbid(fmt.Sprintf("capability %s of container %s", name, c.Name), "--allow-capability="+name)
			}
		}
	}
	return nil
}

// allowsCapability reports whether capabilities.add may name capability name: one of
// DefaultCapabilities (adding it back after a drop takes nothing from the node), one the
// node lists, or anything when the node lists ALL.
func (p Permissions) allowsCapability(name string) bool {
	normal := func(n string) string { return spec.CapabilityName(strings.TrimPrefix(strings.ToUpper(n), "CAP_")) }
	if !strings.EqualFold(name, spec.CapabilityAll) && slices.Contains(DefaultCapabilities, normal(name)) {
		return true
	}
	for _, allowed := range p.Capabilities {
		if strings.EqualFold(allowed, spec.CapabilityAll) || normal(allowed) == normal(name) {
			return true
		}
	}
	return false
}

// hostPathPrefix returns the allowed directory that holds hostPath, or "".
func (p Permissions) hostPathPrefix(hostPath string) string {
	for _, dir := range p.HostPaths {
		if dir == "/" || hostPath == dir || strings.HasPrefix(hostPath, dir+"/") {
			return dir
		}
	}
	return ""
}

// capabilitySet is a container's capabilities: DefaultCapabilities, then ALL in add (all:
// every capability the agent holds) and ALL in drop, then single adds, then single drops,
// as containerd's CRI applies them, so that "drop: [ALL], add: [NET_BIND_SERVICE]" keeps
// exactly NET_BIND_SERVICE.
func capabilitySet(add, drop, all []string) []string {
	isAll := func(name string) bool { return strings.EqualFold(name, spec.CapabilityAll) }
	caps := slices.Clone(DefaultCapabilities)
	if slices.ContainsFunc(add, isAll) {
		caps = slices.Clone(all)
	}
	if slices.ContainsFunc(drop, isAll) {
		caps = nil
	}
	for _, name := range add {
		if c := spec.CapabilityName(name); !isAll(name) && !slices.Contains(caps, c) {
			caps = append(caps, c)
		}
	}
	for _, name := range drop {
		caps = slices.DeleteFunc(caps, func(c string) bool { return c == spec.CapabilityName(name) })
	}
	slices.Sort(caps)
	return caps
}

// securityOpts confines a container: its user and groups, capabilities, seccomp filter,
// no_new_privs, root filesystem and host namespaces. They must come after
// oci.WithImageConfig, whose user they override; the last one refuses a root user when
// the container must not run as root, once every other option has set the user.
func (c *Containerd) securityOpts(imageUser string, s *InstanceSpec, cs *ContainerSpec) ([]oci.SpecOpts, error) {
	sec := cs.Security
	var opts []oci.SpecOpts
	if user := userString(imageUser, sec); user != "" {
		name, _, _ := strings.Cut(user, ":")
		opts = append(opts, oci.WithUser(user), oci.WithAdditionalGIDs(name))
	}
	if groups := instanceGroups(s); len(groups) > 0 {
		opts = append(opts, withExtraGroups(groups))
	}
	all, err := cap.Current()
	if err != nil {
		return nil, fmt.Errorf("read the agent's capabilities: %w", err)
	}
	opts = append(opts, oci.WithCapabilities(capabilitySet(sec.CapAdd, sec.CapDrop, all)), withoutAmbientCapabilities)
	switch {
	case sec.Privileged:
		opts = append(opts, oci.WithPrivileged, oci.WithHostDevices, oci.WithAllDevicesAllowed)
	case sec.Seccomp == spec.SeccompUnconfined:
		opts = append(opts, oci.WithSeccompUnconfined)
	case sec.Seccomp == spec.SeccompLocalhost:
		// The profile directory belongs to the operator; resolving inside it still keeps
		// a symlink there from pointing a profile at any file of the node.
		profile, err := securejoin.SecureJoin(c.cfg.permissions.SeccompProfileRoot, sec.SeccompProfile)
		if err != nil {
			return nil, fmt.Errorf("%w: seccomp profile %s: %w", ErrConfig, sec.SeccompProfile, err)
		}
		opts = append(opts, seccomp.WithProfile(profile))
	default:
		// After the capabilities: the profile allows the syscalls they stand for.
		opts = append(opts, seccomp.WithDefaultProfile())
	}
	if sec.Privileged || sec.AllowPrivilegeEscalation {
		opts = append(opts, oci.WithNewPrivileges)
	} else {
		opts = append(opts, oci.WithNoNewPrivileges)
	}
	if sec.ReadOnlyRootFilesystem {
		opts = append(opts, oci.WithRootFSReadonly())
	}
	if s.HostPID {
		opts = append(opts, oci.WithHostNamespace(specs.PIDNamespace))
	}
	if s.HostIPC {
		opts = append(opts, oci.WithHostNamespace(specs.IPCNamespace))
	}
	if sec.RunAsNonRoot {
		opts = append(opts, refuseRoot(cs.Image))
	}
	return opts, nil
}

// userString is the user (and group) the container runs as, in containerd's "user[:group]"
// form, or "" to keep the image's. A name in the image's user is resolved from its
// /etc/passwd by containerd, inside the image's root.
func userString(imageUser string, sec Security) string {
	if sec.RunAsUser == nil && sec.RunAsGroup == nil {
		return ""
	}
	user, _, _ := strings.Cut(imageUser, ":")
	if sec.RunAsUser != nil {
		user = strconv.FormatInt(*sec.RunAsUser, 10)
	}
	if user == "" {
		user = "0"
	}
	if sec.RunAsGroup != nil {
		user += ":" + strconv.FormatInt(*sec.RunAsGroup, 10)
	}
	return user
}

// instanceGroups are the groups every container of s gets besides its user's own:
// supplementalGroups, then fsGroup.
func instanceGroups(s *InstanceSpec) []uint32 {
	var out []uint32
	for _, g := range s.SupplementalGroups {
		out = append(out, uint32(g))
	}
	if s.FSGroup != nil {
		out = append(out, uint32(*s.FSGroup))
	}
	return out
}

// withExtraGroups adds groups to the process's supplementary groups, once each.
func withExtraGroups(groups []uint32) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *specs.Spec) error {
		for _, g := range groups {
			if !slices.Contains(s.Process.User.AdditionalGids, g) {
				s.Process.User.AdditionalGids = append(s.Process.User.AdditionalGids, g)
			}
		}
		return nil
	}
}

// withoutAmbientCapabilities keeps capabilities out of the ambient and inheritable sets:
// a non-root process then loses them at exec, as in Docker and Kubernetes.
func withoutAmbientCapabilities(_ context.Context, _ oci.Client, _ *containers.Container, s *specs.Spec) error {
	s.Process.Capabilities.Ambient, s.Process.Capabilities.Inheritable = nil, nil
	return nil
}

// refuseRoot fails the spec when, with every user option applied, the process runs as uid 0.
func refuseRoot(image string) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *specs.Spec) error {
		if s.Process.User.UID == 0 {
			return fmt.Errorf("%w: container has runAsNonRoot and image %s will run as root (uid 0): set runAsUser, or a non-root USER in the image", ErrConfig, image)
		}
		return nil
	}
}
