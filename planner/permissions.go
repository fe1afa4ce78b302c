package planner

import (
	"path"
	"slices"
	"strings"

	"github.com/shoalhq/shoal/spec"
)

// Permission is one thing a node may let an instance ask for beyond the default sandbox,
// as a bit of Permissions.Allow. Gossip carries the bits as they are, so their values
// are part of the wire format: never renumber them.
type Permission uint64

// The permissions, each allowed by the agent flag named.
const (
	// AllowPrivileged: --allow-privileged.
	AllowPrivileged Permission = 1 << iota
	// AllowHostNetwork: --allow-host-network.
	AllowHostNetwork
	// AllowHostPID: --allow-host-pid.
	AllowHostPID
	// AllowHostIPC: --allow-host-ipc.
	AllowHostIPC
	// AllowSeccompUnconfined: --allow-unconfined-seccomp.
	AllowSeccompUnconfined
	// AllowSeccompLocalhost: --seccomp-profile-root.
	AllowSeccompLocalhost
	// AllowHostPort: --allow-host-port.
	AllowHostPort
)

// Permissions is what a node lets an instance ask for beyond the default sandbox: the
// planner's copy of the node's executor.Permissions, which its agent publishes in its
// signed gossip metadata. The zero value allows nothing more. The executor checks the
// instance again at every start; this copy keeps the planner from choosing a node that
// would refuse it.
type Permissions struct {
	// Allow is a set of Permission bits.
	Allow Permission `json:"allow,omitempty"`
	// HostPaths are the directories (absolute, clean) whose contents hostPath volumes may
	// mount; "/" allows any path.
	HostPaths []string `json:"hostPaths,omitempty"`
	// Capabilities are what capabilities.add may name beyond the default set (NET_RAW,
	// CAP_NET_RAW, any case); "ALL" allows any, and ALL itself.
	Capabilities []string `json:"capabilities,omitempty"`
}

// DefaultCapabilities are the capabilities every container holds unless it drops them,
// without the CAP_ prefix (executor.DefaultCapabilities, which a test keeps equal):
// adding one back takes nothing from the node, so no node refuses it.
var DefaultCapabilities = []string{
	"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
	"NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}

// needs is what an instance of a workload asks of its node beyond the default sandbox,
// derived once from its pod template.
type needs struct {
	allow     Permission
	hostPaths []string // clean
	caps      []string // upper case, without CAP_, not in DefaultCapabilities
}

// needsOf derives what a pod asks of its node, as executor.Permissions.Check reads it
// from the resolved instance.
func needsOf(ps *spec.PodSpec) needs {
	var n needs
	for _, f := range []struct {
		asked bool
		p     Permission
	}{{ps.HostNetwork, AllowHostNetwork}, {ps.HostPID, AllowHostPID}, {ps.HostIPC, AllowHostIPC}} {
		if f.asked {
			n.allow |= f.p
		}
	}
	for i := range ps.Containers {
		for _, port := range ps.Containers[i].Ports {
			if port.HostPort != 0 {
				n.allow |= AllowHostPort
			}
		}
	}
	for _, v := range ps.Volumes {
		if v.HostPath != nil {
			n.hostPaths = append(n.hostPaths, path.Clean(v.HostPath.Path))
		}
	}
	for i := range ps.Containers {
		e := spec.Effective(ps.SecurityContext, ps.Containers[i].SecurityContext)
		if e.Privileged {
			n.allow |= AllowPrivileged
		}
		if e.Seccomp != nil {
			switch e.Seccomp.Type {
			case spec.SeccompUnconfined:
				n.allow |= AllowSeccompUnconfined
			case spec.SeccompLocalhost:
				n.allow |= AllowSeccompLocalhost
			}
		}
		for _, c := range e.Capabilities.Add {
			if c = capName(c); !slices.Contains(DefaultCapabilities, c) {
				n.caps = append(n.caps, c)
			}
		}
	}
	slices.Sort(n.hostPaths)
	slices.Sort(n.caps)
	n.hostPaths, n.caps = slices.Compact(n.hostPaths), slices.Compact(n.caps)
	return n
}

// capName is a capability's name in upper case without the CAP_ prefix.
func capName(c string) string { return strings.TrimPrefix(strings.ToUpper(c), "CAP_") }

// none reports whether the instance asks for nothing beyond the default sandbox.
func (n *needs) none() bool { return n.allow == 0 && len(n.hostPaths) == 0 && len(n.caps) == 0 }

// refusal is the first thing n asks that p does not allow, or fits.
func (p *Permissions) refusal(n *needs) reason {
	for _, f := range []struct {
		p Permission
		r reason
	}{
		{AllowHostNetwork, disallowedHostNetwork}, {AllowHostPID, disallowedHostPID}, {AllowHostIPC, disallowedHostIPC},
		{AllowPrivileged, disallowedPrivileged}, {AllowSeccompLocalhost, disallowedSeccompLocalhost},
		{AllowSeccompUnconfined, disallowedSeccompUnconfined}, {AllowHostPort, disallowedHostPort},
	} {
		if n.allow&f.p != 0 && p.Allow&f.p == 0 {
			return f.r
		}
	}
	for _, hp := range n.hostPaths {
		if !slices.ContainsFunc(p.HostPaths, func(dir string) bool {
			return dir == "/" || hp == dir || strings.HasPrefix(hp, dir+"/")
		}) {
			return disallowedHostPath
		}
	}
	for _, c := range n.caps {
		if !slices.ContainsFunc(p.Capabilities, func(allowed string) bool {
			allowed = capName(allowed)
			return allowed == spec.CapabilityAll || allowed == c
		}) {
			return disallowedCapability
		}
	}
	return fits
}
