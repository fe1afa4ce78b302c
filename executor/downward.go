package executor

import (
	"cmp"
	"crypto/sha1"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/shoalhq/shoal/spec"
)

// The Downward API: what an instance learns about itself through env fieldRef and
// resourceFieldRef, and through downwardAPI volumes and projections.

// NodeAllocatable is what the node lets instances use. A resourceFieldRef on a limit the
// container does not set reports it, as the kubelet does.
type NodeAllocatable struct {
	MilliCPU         int64
	MemoryBytes      int64
	EphemeralStorage int64 // bytes; 0: unknown
}

// WithHostIP gives the node's address, used by fieldRef status.hostIP and status.hostIPs.
// Without it, such a reference is ErrConfig.
func WithHostIP(ip string) ResolveOption { return func(r *resolveContext) { r.hostIP = ip } }

// WithNodeAllocatable gives what a resourceFieldRef reports for a limit the container
// does not set.
func WithNodeAllocatable(a NodeAllocatable) ResolveOption {
	return func(r *resolveContext) { r.allocatable = a }
}

// defaultServiceAccount is the service account a Kubernetes pod runs as when it names none.
const defaultServiceAccount = "default"

// InstanceUID is what fieldRef metadata.uid reports: a UUID (version 5, SHA-1) of the
// instance ID. Kubernetes gives each pod object a random UID; a Shoal instance has no
// object, and its ID is already unique in the cluster and stable for its life (a new spec
// or slot is a new ID), so its UID is derived from it: the same on every node and after a
// restart of the agent or of the container, as a pod's UID is across container restarts.
func InstanceUID(instanceID string) string {
	// The UUID namespace is Shoal's own, a fixed random UUID, so these UIDs cannot collide
	// with name-based UUIDs of other namespaces.
	h := sha1.New()
	h.Write([]byte{0x5b, 0x0a, 0x1d, 0x3e, 0x8f, 0x6c, 0x4e, 0x2a, 0x9d, 0x17, 0xc4, 0x43, 0xe0, 0x52, 0x7b, 0x91})
	h.Write([]byte(instanceID))
	u := h.Sum(nil)[:16]
	u[6] = u[6]&0x0f | 0x50 // version 5
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// field resolves a fieldRef path among allowed (spec.EnvFieldPaths or spec.VolumeFieldPaths,
// plus subscripted labels and annotations), as the kubelet does: a label or annotation the
// instance does not have is the empty string.
func (r *resolveContext) field(fieldPath string, allowed []string) (string, error) {
	meta := &r.template.Metadata
	base, key, subscripted := spec.SplitFieldPath(fieldPath)
	if subscripted {
		switch base {
		case spec.FieldLabels:
			return meta.Labels[key], nil
		case spec.FieldAnnotations:
			return meta.Annotations[key], nil
		}
	}
	if subscripted || !slices.Contains(allowed, fieldPath) {
		return "", fmt.Errorf("%w: fieldRef %q is not supported here: supported are %s, metadata.labels['key'] and metadata.annotations['key']",
			ErrConfig, fieldPath, strings.Join(allowed, ", "))
	}
	need := func(v, option string) (string, error) {
		if v == "" {
			return "", fmt.Errorf("%w: fieldRef %s needs %s", ErrConfig, fieldPath, option)
		}
		return v, nil
	}
	switch fieldPath {
	case "metadata.name":
		return r.instanceID, nil
	case "metadata.namespace":
		return r.namespace, nil
	case "metadata.uid":
		return InstanceUID(r.instanceID), nil
	case spec.FieldLabels:
		return formatMap(meta.Labels), nil
	case spec.FieldAnnotations:
		return formatMap(meta.Annotations), nil
	case "spec.nodeName":
		return r.node, nil
	case "spec.serviceAccountName":
		return cmp.Or(r.template.Spec.ServiceAccountName, defaultServiceAccount), nil
	case "status.hostIP", "status.hostIPs":
		// One address per family; Shoal nodes have one (IPv4), so both read the same.
		return need(r.hostIP, "the node's address (WithHostIP)")
	case "status.podIP", "status.podIPs":
		return need(r.podIP, "the instance's address (WithPodIP)")
	}
	return "", fmt.Errorf("%w: fieldRef %q is not supported", ErrConfig, fieldPath)
}

// formatMap renders labels or annotations as a downwardAPI file does: one key="value"
// line per key in key order, values quoted as Go quotes them, no final newline.
func formatMap(m map[string]string) string {
	var b strings.Builder
	for i, k := range sortedKeys(m) {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(m[k]))
	}
	return b.String()
}

// resource resolves a resourceFieldRef of the container self (or of the one it names):
// the request or limit in units of the divisor, rounded up, as the kubelet computes it.
// A limit the container does not set is the node's allocatable; a request it does not
// set is its limit when it has one (Kubernetes' defaulting), else 0.
func (r *resolveContext) resource(f *spec.ResourceFieldSelector, self spec.Container) (string, error) {
	c := self
	if f.ContainerName != "" {
		all := r.template.Spec.AllContainers()
		i := slices.IndexFunc(all, func(c *spec.Container) bool { return c.Name == f.ContainerName })
		if i < 0 {
			return "", fmt.Errorf("%w: resourceFieldRef: container %q is not one of the instance's containers", ErrConfig, f.ContainerName)
		}
		c = *all[i]
	}
	side, name, _ := strings.Cut(f.Resource, ".")
	if !slices.Contains(spec.ContainerResources, f.Resource) {
		return "", fmt.Errorf("%w: resourceFieldRef: resource %q is not supported: supported are %s", ErrConfig, f.Resource, strings.Join(spec.ContainerResources, ", "))
	}
	q, set := c.Resources.Limits[name]
	if side == "requests" {
		if req, ok := c.Resources.Requests[name]; ok {
			q, set = req, true
		}
	}
	cpu := name == spec.ResourceCPU
	var value int64 // milli-CPUs or bytes
	switch {
	case set && cpu:
		value = q.MilliValue()
	case set:
		value = q.Value()
	case side == "requests":
		value = 0
	case cpu:
		value = r.allocatable.MilliCPU
	case name == spec.ResourceMemory:
		value = r.allocatable.MemoryBytes
	default:
		if r.allocatable.EphemeralStorage <= 0 {
			return "", fmt.Errorf("%w: resourceFieldRef %s: the container sets no limit and the node's allocatable ephemeral storage is unknown", ErrConfig, f.Resource)
		}
		value = r.allocatable.EphemeralStorage
	}
	var divisor int64 = 1
	if cpu {
		divisor = 1000
	}
	if d := f.Divisor; d != nil && !d.IsZero() {
		if cpu {
			divisor = d.MilliValue()
		} else {
			divisor = d.Value()
		}
	}
	if divisor <= 0 {
		return "", fmt.Errorf("%w: resourceFieldRef %s: divisor %s is not positive", ErrConfig, f.Resource, f.Divisor)
	}
	return strconv.FormatInt(ceilDiv(value, divisor), 10), nil
}

// ceilDiv is a/b rounded up, for a ≥ 0 and b > 0.
func ceilDiv(a, b int64) int64 {
	n := a / b
	if a%b != 0 {
		n++
	}
	return n
}

// downwardFiles are the files of a downwardAPI volume or projection.
func (r *resolveContext) downwardFiles(items []spec.DownwardAPIVolumeFile, mode fs.FileMode) ([]File, error) {
	files := make([]File, 0, len(items))
	for _, it := range items {
		if !isLocalPath(it.Path) {
			return nil, fmt.Errorf("%w: downwardAPI: path %q leaves the volume", ErrConfig, it.Path)
		}
		var value string
		var err error
		switch {
		case it.FieldRef != nil:
			value, err = r.field(it.FieldRef.FieldPath, spec.VolumeFieldPaths)
		case it.ResourceFieldRef != nil:
			if it.ResourceFieldRef.ContainerName == "" {
				return nil, fmt.Errorf("%w: downwardAPI %s: resourceFieldRef must name its container", ErrConfig, it.Path)
			}
			value, err = r.resource(it.ResourceFieldRef, spec.Container{})
		default:
			err = fmt.Errorf("%w: names neither fieldRef nor resourceFieldRef", ErrConfig)
		}
		if err != nil {
			return nil, fmt.Errorf("downwardAPI %s: %w", it.Path, err)
		}
		files = append(files, File{Path: path.Clean(it.Path), Mode: fileMode(it.Mode, mode), Data: []byte(value)})
	}
	return files, nil
}

// projectedFiles gathers the files of a projected volume's sources. Service account tokens
// and cluster trust bundles are left out (validation warned). Two sources writing one
// path is an error, as in Kubernetes.
func (r *resolveContext) projectedFiles(v *spec.ProjectedVolumeSource) ([]File, error) {
	var files []File
	for i, src := range v.Sources {
		var more []File
		var err error
		switch {
		case src.ConfigMap != nil:
			s := src.ConfigMap
			more, err = r.configMapFiles(s.Name, s.Items, s.Optional, fileMode(v.DefaultMode, defaultConfigMapMode))
		case src.Secret != nil:
			s := src.Secret
			more, err = r.secretFiles(s.Name, s.Items, s.Optional, fileMode(v.DefaultMode, defaultSecretMode))
		case src.DownwardAPI != nil:
			more, err = r.downwardFiles(src.DownwardAPI.Items, fileMode(v.DefaultMode, defaultConfigMapMode))
		}
		if err != nil {
			return nil, fmt.Errorf("projected source %d: %w", i, err)
		}
		files = append(files, more...)
	}
	seen := make(map[string]bool, len(files))
	for _, f := range files {
		if seen[f.Path] {
			return nil, fmt.Errorf("%w: projected: two sources write %q", ErrConfig, f.Path)
		}
		seen[f.Path] = true
	}
	return files, nil
}
