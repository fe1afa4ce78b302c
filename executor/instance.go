package executor

import (
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"path"
	"slices"
	"strings"
	"time"
)

// InstanceSpec is everything needed to run one instance (one Deployment replica), fully
// resolved: no references to ConfigMaps, Secrets or fields are left in it. Resolve builds it.
//
// It holds secret values (environment variables and files). Its String, Format and LogValue
// methods leave them out, so printing or logging an InstanceSpec never shows them.
type InstanceSpec struct {
	// ID names the instance on this node, e.g. "web-5d8f7c9b2a-0". It must be unique on the
	// node (across namespaces) because Stop and Restart find an instance by ID alone.
	ID string
	// Namespace and Workload name the Deployment the instance belongs to.
	Namespace string
	Workload  string
	// Revision is the commit SHA the instance was resolved from.
	Revision string
	// SpecHash is spec.InstanceHash of the Deployment: equal hashes mean the instance
	// would run the same thing, so Start on an existing instance with the same hash is a no-op.
	SpecHash string
	// Node is the name of the node the instance runs on.
	Node string
	// GracePeriod is how long Stop waits after SIGTERM before SIGKILL.
	GracePeriod time.Duration
	// Containers are the instance's init containers (Init > 0), in their order, then its
	// app containers; names are unique within the instance.
	Containers []ContainerSpec
	// Stage, when not 0, is how many of Containers Start creates and starts: the agent
	// starts init containers one at a time and the app containers after them, each step a
	// Start of the next stage. 0 starts every container.
	Stage int
	// Volumes are shared by the instance's containers and live as long as the instance.
	Volumes []Volume
	// ResolvConf, when not empty, is the /etc/resolv.conf of every container of the
	// instance (mounted read-only); when empty the containers see the host's.
	ResolvConf []byte
	// Addr is the address the instance asks for in its own network namespace (the agent
	// chooses it from the node's pod subnet); invalid lets the pod network pick one. It is
	// not used without a pod network (WithPodNetwork) or with HostNetwork; InstanceState
	// gives the address the instance has.
	Addr netip.Addr
	// HostNetwork, HostPID and HostIPC are what the manifest asked for; a runtime refuses
	// each unless its Permissions allow it. Without a pod network (WithPodNetwork) the
	// containers use the node's network whether or not they ask.
	HostNetwork, HostPID, HostIPC bool
	// SupplementalGroups and FSGroup are added to every container's groups; FSGroup also
	// owns the instance's emptyDir, configMap and secret volumes, as in Kubernetes.
	SupplementalGroups []int64
	FSGroup            *int64
}

// PullPolicy says when EnsureImage fetches an image; the values are Kubernetes' own.
type PullPolicy string

// Pull policies.
const (
	PullAlways       PullPolicy = "Always"
	PullIfNotPresent PullPolicy = "IfNotPresent"
	PullNever        PullPolicy = "Never"
)

// ContainerSpec is one container of an instance.
type ContainerSpec struct {
	Name       string
	Image      string
	PullPolicy PullPolicy
	// Command and Args are the Kubernetes overrides of the image's Entrypoint and Cmd, with
	// $(VAR) references already expanded; Argv combines them with the image's config.
	Command []string
	Args    []string
	// Env is the container's environment in order, after envFrom and env were merged.
	Env []EnvVar
	// WorkingDir overrides the image's working directory when not empty.
	WorkingDir string
	// MemoryLimitBytes is the kernel memory limit; 0 means none.
	MemoryLimitBytes int64
	// CPUQuotaMicros is the CFS quota per CPUPeriodMicros; 0 means no CPU limit.
	CPUQuotaMicros  int64
	CPUPeriodMicros uint64
	// CPUShares is the relative CPU weight derived from the CPU request, as Kubernetes does.
	CPUShares uint64
	Mounts    []Mount
	Ports     []Port
	// Probes are the container's liveness, readiness and startup probes, at most one of
	// each kind. The runtime does not run them; a Prober does.
	Probes []ProbeSpec
	// Security is how the container is confined; the zero value is the default sandbox.
	Security Security
	// Init is the container's place (from 1) among the instance's init containers; 0 for
	// an app container. Sidecar marks an init container that keeps running beside the
	// app containers (restartPolicy Always): Stop stops sidecars last.
	Init    int
	Sidecar bool
	// PostStart and PreStop are the container's lifecycle hooks, nil when it has none
	// (see hooks.go for when they run).
	PostStart *Hook
	PreStop   *Hook
}

// Completes reports whether the container is meant to run to completion: an init
// container that is not a sidecar.
func (c *ContainerSpec) Completes() bool { return c.Init > 0 && !c.Sidecar }

// StageContainers are the containers Start creates and starts for s's Stage.
func (s *InstanceSpec) StageContainers() []ContainerSpec {
	if s.Stage <= 0 || s.Stage > len(s.Containers) {
		return s.Containers
	}
	return s.Containers[:s.Stage]
}

// EnvVar is one resolved environment variable.
type EnvVar struct {
	Name  string
	Value string
	// Secret marks a value taken from a Secret: it is never printed or logged.
	Secret bool
}

// String renders NAME=value, hiding secret values.
func (e EnvVar) String() string {
	if e.Secret {
		return e.Name + "=<redacted>"
	}
	return e.Name + "=" + e.Value
}

// Format makes every fmt verb (including %#v) go through String, so a secret value cannot
// leak through a %+v of a struct that contains it.
func (e EnvVar) Format(f fmt.State, _ rune) { fmt.Fprint(f, e.String()) }

// VolumeKind says where a volume's content comes from.
type VolumeKind string

// Volume kinds.
const (
	// VolumeConfigMap holds a ConfigMap's keys as read-only files.
	VolumeConfigMap VolumeKind = "configMap"
	// VolumeSecret holds a Secret's keys as read-only files on a tmpfs, never on disk.
	VolumeSecret VolumeKind = "secret"
	// VolumeEmptyDir is a scratch directory shared by the instance's containers.
	VolumeEmptyDir VolumeKind = "emptyDir"
	// VolumeHostPath is a file or directory of the node, bound in as it is.
	VolumeHostPath VolumeKind = "hostPath"
	// VolumeDownwardAPI holds fields of the instance and resources of its containers as
	// read-only files.
	VolumeDownwardAPI VolumeKind = "downwardAPI"
	// VolumeProjected holds the files of several ConfigMaps, Secrets and Downward API
	// sources, read-only; on a tmpfs when any is a Secret's.
	VolumeProjected VolumeKind = "projected"
)

// written reports whether Shoal writes the volume's files (Volume.Files): such volumes are
// mounted read-only, as Kubernetes mounts them.
func (k VolumeKind) written() bool {
	return k == VolumeConfigMap || k == VolumeSecret || k == VolumeDownwardAPI || k == VolumeProjected
}

// onTmpfs reports whether the volume lives on a tmpfs: an emptyDir of medium Memory, and
// every volume that holds a Secret's content, which must never reach a disk.
func (v *Volume) onTmpfs() bool {
	return v.Memory || v.Kind == VolumeSecret || slices.ContainsFunc(v.Files, func(f File) bool { return f.Secret })
}

// Volume is a named source of files mounted into the instance's containers.
type Volume struct {
	Name string
	Kind VolumeKind
	// Files is the content of configMap, secret, downwardAPI and projected volumes.
	Files []File
	// Memory puts an emptyDir on a tmpfs. Secret volumes are always on a tmpfs.
	Memory bool
	// SizeLimitBytes caps a tmpfs-backed volume; 0 means the default (half of RAM for
	// an emptyDir, the size of the files plus slack for a secret volume).
	SizeLimitBytes int64
	// HostPath is the absolute path on the node of a hostPath volume, and HostPathType
	// what must be there (spec.HostPath* values; "" checks nothing).
	HostPath     string
	HostPathType string
}

// File is one file of a configMap or secret volume.
type File struct {
	// Path is relative to the volume root, slash-separated, without "..".
	Path string
	Mode fs.FileMode
	Data []byte
	// Secret marks content taken from a Secret.
	Secret bool
}

// String renders the file's path, mode and size, never its content.
func (f File) String() string {
	return fmt.Sprintf("%s(%v, %d bytes)", f.Path, f.Mode, len(f.Data))
}

// Format makes every fmt verb go through String, so no content is ever printed.
func (f File) Format(s fmt.State, _ rune) { fmt.Fprint(s, f.String()) }

// Mount places a volume (or one path inside it) at Path in a container.
type Mount struct {
	Volume string
	// Path is the absolute path inside the container.
	Path string
	// SubPath, when set, mounts only this relative path of the volume.
	SubPath  string
	ReadOnly bool
}

// Port is a port the container listens on. With host networking it is a node resource;
// in an instance's own network namespace (WithPodNetwork) it is the instance's alone.
type Port struct {
	Name     string
	Port     int32
	Protocol string
	// HostPort, when not 0, is a port of the node forwarded to Port (Kubernetes' hostPort,
	// a node resource); only instances in their own network namespace have it forwarded.
	HostPort int32
	// HostIP, when not empty, is the only node address HostPort is opened on.
	HostIP string
}

// validate checks the numbers a port mapping needs: ports in 1..65535 (HostPort may be 0,
// none), a HostIP that is an address.
func (p Port) validate() error {
	if p.Port < 1 || p.Port > 65535 || p.HostPort < 0 || p.HostPort > 65535 {
		return fmt.Errorf("port %d (hostPort %d) is outside 1..65535", p.Port, p.HostPort)
	}
	if p.HostIP != "" {
		if _, err := netip.ParseAddr(p.HostIP); err != nil {
			return fmt.Errorf("port %d: hostIP %q is not an address", p.Port, p.HostIP)
		}
	}
	return nil
}

// Container returns the named container, and whether it exists.
func (s *InstanceSpec) Container(name string) (*ContainerSpec, bool) {
	for i := range s.Containers {
		if s.Containers[i].Name == name {
			return &s.Containers[i], true
		}
	}
	return nil, false
}

// Volume returns the named volume, and whether it exists.
func (s *InstanceSpec) Volume(name string) (*Volume, bool) {
	for i := range s.Volumes {
		if s.Volumes[i].Name == name {
			return &s.Volumes[i], true
		}
	}
	return nil, false
}

// String names the instance and its images; it holds no environment or file content.
func (s InstanceSpec) String() string {
	images := make([]string, len(s.Containers))
	for i, c := range s.Containers {
		images[i] = c.Name + "=" + c.Image
	}
	return fmt.Sprintf("instance %s (%s/%s, hash %s, revision %s, containers %s)",
		s.ID, s.Namespace, s.Workload, s.SpecHash, s.Revision, strings.Join(images, ","))
}

// Format makes every fmt verb go through String.
func (s InstanceSpec) Format(f fmt.State, _ rune) { fmt.Fprint(f, s.String()) }

// LogValue lets slog log an InstanceSpec without its secrets.
func (s InstanceSpec) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", s.ID),
		slog.String("namespace", s.Namespace),
		slog.String("workload", s.Workload),
		slog.String("hash", s.SpecHash),
		slog.String("revision", s.Revision),
	)
}

// Validate checks what every Runtime relies on: an ID, at least one container, init
// containers first and in order, unique container names, an image per container, mounts that name a volume of the instance, and
// names and paths that stay inside the directories they name on the host (ID, container
// and volume names become path components; file paths and subPaths are joined to volume
// directories), whoever built the spec; and probes that a Prober can run: one handler,
// valid ports, positive timings, at most one probe of each kind per container; and hooks
// with one valid action each.
func (s *InstanceSpec) Validate() error {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: instance %s: %s", ErrInvalidSpec, s.ID, fmt.Sprintf(format, args...))
	}
	if !isPathComponent(s.ID) {
		return invalid("ID %q is not a name ([A-Za-z0-9._-], not . or ..)", s.ID)
	}
	if len(s.Containers) == 0 {
		return invalid("no containers")
	}
	for _, v := range s.Volumes {
		if !isPathComponent(v.Name) {
			return invalid("volume name %q is not a name", v.Name)
		}
		for _, f := range v.Files {
			if !isLocalPath(f.Path) {
				return invalid("volume %s: file path %q leaves the volume", v.Name, f.Path)
			}
		}
		if v.Kind == VolumeHostPath && (!path.IsAbs(v.HostPath) || path.Clean(v.HostPath) != v.HostPath) {
			return invalid("volume %s: host path %q is not absolute and clean", v.Name, v.HostPath)
		}
	}
	seen := make(map[string]bool, len(s.Containers))
	for i, c := range s.Containers {
		switch {
		case c.Init != 0 && c.Init != i+1:
			return invalid("container %s is init container %d at place %d: init containers come first, in order", c.Name, c.Init, i+1)
		case c.Sidecar && c.Init == 0:
			return invalid("container %s is a sidecar but not an init container", c.Name)
		case c.Completes() && len(c.Probes) > 0:
			return invalid("init container %s runs to completion: it has no probes", c.Name)
		case !isPathComponent(c.Name):
			return invalid("container name %q is not a name", c.Name)
		case seen[c.Name]:
			return invalid("container name %q repeats", c.Name)
		case c.Image == "":
			return invalid("container %s has no image", c.Name)
		}
		seen[c.Name] = true
		for _, p := range c.Ports {
			if err := p.validate(); err != nil {
				return invalid("container %s: %v", c.Name, err)
			}
		}
		if err := c.Security.validate(); err != nil {
			return invalid("container %s: %v", c.Name, err)
		}
		for _, m := range c.Mounts {
			if _, ok := s.Volume(m.Volume); !ok {
				return invalid("container %s mounts unknown volume %q", c.Name, m.Volume)
			}
			if !path.IsAbs(m.Path) || m.SubPath != "" && !isLocalPath(m.SubPath) {
				return invalid("container %s: mount %q (subPath %q) must be absolute and stay in its volume", c.Name, m.Path, m.SubPath)
			}
		}
		for name, h := range map[string]*Hook{"postStart": c.PostStart, "preStop": c.PreStop} {
			if err := h.validate(); err != nil {
				return invalid("container %s: %s hook: %v", c.Name, name, err)
			}
		}
		kinds := make(map[ProbeKind]bool, len(c.Probes))
		for _, p := range c.Probes {
			if err := p.validate(); err != nil {
				return invalid("container %s: %v", c.Name, err)
			}
			if kinds[p.Kind] {
				return invalid("container %s has two %s probes", c.Name, p.Kind)
			}
			kinds[p.Kind] = true
		}
	}
	return nil
}

// isPathComponent reports whether s can be one component of a host path: a non-empty
// name of letters, digits, '.', '_' and '-' that is not "." or "..".
func isPathComponent(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
