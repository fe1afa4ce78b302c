package executor

import (
	"fmt"
	"io/fs"
	"log/slog"
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
	// Containers run together; their names are unique within the instance.
	Containers []ContainerSpec
	// Volumes are shared by the instance's containers and live as long as the instance.
	Volumes []Volume
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
)

// Volume is a named source of files mounted into the instance's containers.
type Volume struct {
	Name string
	Kind VolumeKind
	// Files is the content of configMap and secret volumes.
	Files []File
	// Memory puts an emptyDir on a tmpfs. Secret volumes are always on a tmpfs.
	Memory bool
	// SizeLimitBytes caps a tmpfs-backed volume; 0 means the default (half of RAM for
	// an emptyDir, the size of the files plus slack for a secret volume).
	SizeLimitBytes int64
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

// Port is a port the container listens on. With host networking it is a node resource.
type Port struct {
	Name     string
	Port     int32
	Protocol string
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

// Validate checks what every Runtime relies on: an ID, at least one container, unique
// container names, an image per container, and mounts that name a volume of the instance.
func (s *InstanceSpec) Validate() error {
	if s.ID == "" {
		return fmt.Errorf("%w: instance has no ID", ErrInvalidSpec)
	}
	if len(s.Containers) == 0 {
		return fmt.Errorf("%w: instance %s has no containers", ErrInvalidSpec, s.ID)
	}
	seen := make(map[string]bool, len(s.Containers))
	for _, c := range s.Containers {
		switch {
		case c.Name == "":
			return fmt.Errorf("%w: instance %s: a container has no name", ErrInvalidSpec, s.ID)
		case seen[c.Name]:
			return fmt.Errorf("%w: instance %s: container name %q repeats", ErrInvalidSpec, s.ID, c.Name)
		case c.Image == "":
			return fmt.Errorf("%w: instance %s: container %s has no image", ErrInvalidSpec, s.ID, c.Name)
		}
		seen[c.Name] = true
		for _, m := range c.Mounts {
			if _, ok := s.Volume(m.Volume); !ok {
				return fmt.Errorf("%w: instance %s: container %s mounts unknown volume %q", ErrInvalidSpec, s.ID, c.Name, m.Volume)
			}
		}
	}
	return nil
}
