package executor

import (
	"cmp"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/shoalhq/shoal/spec"
)

// Defaults Kubernetes applies when a pod template leaves a value out.
const (
	defaultGracePeriod = 30 * time.Second
	// cfsPeriodMicros is the CFS period CPU limits are expressed against (100 ms).
	cfsPeriodMicros = 100_000
	// minCFSQuotaMicros is the smallest quota the kernel accepts.
	minCFSQuotaMicros = 1000
	// minCPUShares and maxCPUShares are the smallest and largest weights the kernel accepts.
	minCPUShares = 2
	maxCPUShares = 262144
	// Volume file modes when the manifest names none. Kubernetes uses 0644 for both; Shoal
	// keeps secrets readable by their owner only.
	defaultConfigMapMode fs.FileMode = 0o644
	defaultSecretMode    fs.FileMode = 0o400
)

// ResolveOption adds what Resolve cannot read from the manifests.
type ResolveOption func(*resolveContext)

// WithPodIP gives the instance's address, used by env fieldRef status.podIP. With host
// networking it is the node's address. Without it, a status.podIP reference is ErrConfig.
func WithPodIP(ip string) ResolveOption { return func(r *resolveContext) { r.podIP = ip } }

// WithResolvConf gives the content of /etc/resolv.conf in every container of the
// instance (the node's DNS server and the cluster's search domains); without it, or with
// empty content, containers see the host's resolv.conf.
func WithResolvConf(content []byte) ResolveOption {
	return func(r *resolveContext) { r.resolvConf = content }
}

// resolveContext is what one Resolve call reads references from.
type resolveContext struct {
	set         *spec.Set
	namespace   string
	instanceID  string
	node        string
	podIP       string
	hostIP      string
	allocatable NodeAllocatable
	resolvConf  []byte
	// template is the pod template being resolved, for the Downward API.
	template *spec.PodTemplate
}

// Resolve builds the InstanceSpec of one replica of d, reading the ConfigMaps and Secrets
// it references from set. It is pure: same inputs, same result. A reference that cannot be
// resolved (a missing ConfigMap, Secret or key that is not optional, an unsupported field
// path) is an error wrapping ErrConfig that names the container and variable or volume.
func Resolve(set *spec.Set, d *spec.Deployment, instanceID, node, revision string, opts ...ResolveOption) (InstanceSpec, error) {
	if set == nil || d == nil {
		return InstanceSpec{}, fmt.Errorf("%w: resolve needs a set and a deployment", ErrInvalidSpec)
	}
	ns := d.Metadata.Namespace
	if ns == "" {
		ns = spec.DefaultNamespace
	}
	r := &resolveContext{set: set, namespace: ns, instanceID: instanceID, node: node, template: &d.Spec.Template}
	for _, o := range opts {
		o(r)
	}
	pod := &d.Spec.Template.Spec
	out := InstanceSpec{
		ID:          instanceID,
		Namespace:   ns,
		Workload:    d.Metadata.Name,
		Revision:    revision,
		SpecHash:    spec.InstanceHash(set, d),
		Node:        node,
		GracePeriod: defaultGracePeriod,
		ResolvConf:  r.resolvConf,
		HostNetwork: pod.HostNetwork,
		HostPID:     pod.HostPID,
		HostIPC:     pod.HostIPC,
	}
	if sc := pod.SecurityContext; sc != nil {
		out.SupplementalGroups, out.FSGroup = sc.SupplementalGroups, sc.FSGroup
	}
	if pod.TerminationGracePeriodSeconds != nil {
		out.GracePeriod = time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
	}
	for _, v := range pod.Volumes {
		vol, err := r.volume(v)
		if err != nil {
			return InstanceSpec{}, fmt.Errorf("%s/%s: volume %s: %w", ns, d.Metadata.Name, v.Name, err)
		}
		out.Volumes = append(out.Volumes, vol)
	}
	// Init containers first, in order: the agent starts them one at a time.
	for i, c := range pod.AllContainers() {
		cs, err := r.container(*c, &out)
		if err != nil {
			return InstanceSpec{}, fmt.Errorf("%s/%s: container %s: %w", ns, d.Metadata.Name, c.Name, err)
		}
		cs.Security = securityOf(pod.SecurityContext, c.SecurityContext)
		if i < len(pod.InitContainers) {
			cs.Init, cs.Sidecar = i+1, c.IsSidecar()
		}
		out.Containers = append(out.Containers, cs)
	}
	sizeMemoryVolumes(&out)
	if err := out.Validate(); err != nil {
		return InstanceSpec{}, err
	}
	return out, nil
}

func (r *resolveContext) container(c spec.Container, inst *InstanceSpec) (ContainerSpec, error) {
	env, err := r.env(c)
	if err != nil {
		return ContainerSpec{}, err
	}
	out := ContainerSpec{
		Name:       c.Name,
		Image:      c.Image,
		PullPolicy: pullPolicy(c.Image, c.ImagePullPolicy),
		Env:        env.vars,
		WorkingDir: c.WorkingDir,
		Command:    expandAll(c.Command, env.lookup),
		Args:       expandAll(c.Args, env.lookup),
	}
	limits, requests := c.Resources.Limits, c.Resources.Requests
	if q, ok := limits[spec.ResourceMemory]; ok && !q.IsZero() {
		out.MemoryLimitBytes = q.Value()
	}
	// Validation bounds quantities (spec.MaxCPUMilli); Resolve refuses what it did not
	// see, since beyond the bound the quota in microseconds overflows.
	if q, ok := limits[spec.ResourceCPU]; ok && !q.IsZero() {
		if q.MilliValue() > spec.MaxCPUMilli {
			return ContainerSpec{}, fmt.Errorf("%w: cpu limit %s is more than %d CPUs", ErrConfig, q, spec.MaxCPUMilli/1000)
		}
		out.CPUPeriodMicros = cfsPeriodMicros
		out.CPUQuotaMicros = max(q.MilliValue()*(cfsPeriodMicros/1000), minCFSQuotaMicros)
	}
	if q, ok := requests[spec.ResourceCPU]; ok && !q.IsZero() {
		// The kernel's largest weight, as the kubelet clamps it.
		out.CPUShares = uint64(min(max(q.MilliValue()*1024/1000, minCPUShares), maxCPUShares))
	}
	for _, m := range c.VolumeMounts {
		vol, ok := inst.Volume(m.Name)
		if !ok {
			return ContainerSpec{}, fmt.Errorf("%w: volumeMount %q names no volume", ErrConfig, m.Name)
		}
		if !path.IsAbs(m.MountPath) {
			return ContainerSpec{}, fmt.Errorf("%w: volumeMount %q: mountPath %q is not absolute", ErrConfig, m.Name, m.MountPath)
		}
		if m.SubPath != "" && !isLocalPath(m.SubPath) {
			return ContainerSpec{}, fmt.Errorf("%w: volumeMount %q: subPath %q leaves the volume", ErrConfig, m.Name, m.SubPath)
		}
		out.Mounts = append(out.Mounts, Mount{
			Volume:  m.Name,
			Path:    path.Clean(m.MountPath),
			SubPath: m.SubPath,
			// Kubernetes mounts the volumes it writes (configMap, secret, downwardAPI, projected)
			// read-only whatever the mount says.
			ReadOnly: m.ReadOnly || vol.Kind.written(),
		})
	}
	for _, p := range c.Ports {
		hp := p.AsHostPort()
		out.Ports = append(out.Ports, Port{Name: p.Name, Port: hp.Port, Protocol: hp.Protocol, HostPort: p.HostPort, HostIP: p.HostIP})
	}
	probes, err := containerProbeSpecs(c)
	if err != nil {
		return ContainerSpec{}, err
	}
	out.Probes = probes
	if l := c.Lifecycle; l != nil {
		if out.PostStart, err = hookSpec(l.PostStart, c); err != nil {
			return ContainerSpec{}, fmt.Errorf("lifecycle.postStart: %w", err)
		}
		if out.PreStop, err = hookSpec(l.PreStop, c); err != nil {
			return ContainerSpec{}, fmt.Errorf("lifecycle.preStop: %w", err)
		}
	}
	return out, nil
}

// containerProbeSpecs resolves a container's probes, in the order liveness, readiness, startup.
func containerProbeSpecs(c spec.Container) ([]ProbeSpec, error) {
	var out []ProbeSpec
	for _, p := range []struct {
		kind  ProbeKind
		probe *spec.Probe
	}{{ProbeLiveness, c.LivenessProbe}, {ProbeReadiness, c.ReadinessProbe}, {ProbeStartup, c.StartupProbe}} {
		if p.probe == nil {
			continue
		}
		ps, err := probeSpec(p.kind, p.probe, c)
		if err != nil {
			return nil, fmt.Errorf("%sProbe: %w", p.kind, err)
		}
		out = append(out, ps)
	}
	return out, nil
}

// probeSpec resolves one probe: named ports become numbers, seconds become durations.
func probeSpec(kind ProbeKind, p *spec.Probe, c spec.Container) (ProbeSpec, error) {
	out := ProbeSpec{
		Kind:             kind,
		InitialDelay:     seconds(p.InitialDelaySeconds),
		Timeout:          seconds(p.TimeoutSeconds),
		Period:           seconds(p.PeriodSeconds),
		SuccessThreshold: int(p.SuccessThreshold),
		FailureThreshold: int(p.FailureThreshold),
	}
	var err error
	switch {
	case p.HTTPGet != nil:
		out.HTTPGet, err = httpGetSpec(p.HTTPGet, c)
	case p.TCPSocket != nil:
		var port int
		if port, err = probePort(p.TCPSocket.Port, c.Ports); err == nil {
			out.TCPSocket = &TCPProbe{Host: p.TCPSocket.Host, Port: port}
		}
	case p.Exec != nil:
		out.Exec = execSpec(p.Exec, c)
	case p.GRPC != nil:
		out.GRPC = &GRPCProbe{Port: int(p.GRPC.Port)}
		if p.GRPC.Service != nil {
			out.GRPC.Service = *p.GRPC.Service
		}
	}
	if err != nil {
		return ProbeSpec{}, err
	}
	return out, nil
}

// hookSpec resolves a lifecycle hook; nil stays nil.
func hookSpec(h *spec.LifecycleHandler, c spec.Container) (*Hook, error) {
	if h == nil {
		return nil, nil
	}
	out := &Hook{}
	switch {
	case h.HTTPGet != nil:
		hg, err := httpGetSpec(h.HTTPGet, c)
		if err != nil {
			return nil, err
		}
		out.HTTPGet = hg
	case h.Exec != nil:
		out.Exec = execSpec(h.Exec, c)
	case h.Sleep != nil:
		d := time.Duration(h.Sleep.Seconds) * time.Second
		out.Sleep = &d
	}
	return out, nil
}

// httpGetSpec resolves the httpGet action of a probe or hook: a named port becomes its number.
func httpGetSpec(h *spec.HTTPGetAction, c spec.Container) (*HTTPProbe, error) {
	port, err := probePort(h.Port, c.Ports)
	if err != nil {
		return nil, err
	}
	out := &HTTPProbe{Scheme: strings.ToLower(cmp.Or(h.Scheme, "HTTP")), Host: h.Host, Port: port, Path: h.Path}
	if len(h.HTTPHeaders) > 0 {
		out.Headers = http.Header{}
		for _, hdr := range h.HTTPHeaders {
			out.Headers.Add(hdr.Name, hdr.Value)
		}
	}
	return out, nil
}

// execSpec resolves the exec action of a probe or hook. As the kubelet does, $(VAR)
// expands to the container's literal env values only: a value from a ConfigMap or Secret
// expands to nothing, so it cannot end up in a command line (and its error messages).
func execSpec(e *spec.ExecAction, c spec.Container) *ExecProbe {
	literal := make(map[string]string, len(c.Env))
	for _, e := range c.Env {
		literal[e.Name] = e.Value
	}
	return &ExecProbe{Command: expandAll(e.Command, func(name string) (string, bool) {
		v, ok := literal[name]
		return v, ok
	})}
}

// sizeMemoryVolumes sizes each memory-backed emptyDir as the kubelet does: its sizeLimit,
// but no more than the instance's memory limit (the sum of its containers' limits, when
// each has one), which is also its size when it gives no sizeLimit. With neither, the
// tmpfs gets the kernel's default, half of the node's memory (where the kubelet uses the
// node's allocatable memory). Whatever its size, what is written there is charged to the
// writing container's memory limit.
func sizeMemoryVolumes(s *InstanceSpec) {
	var podLimit int64
	for _, c := range s.Containers {
		if c.MemoryLimitBytes <= 0 {
			podLimit = 0
			break
		}
		podLimit += c.MemoryLimitBytes
	}
	for i := range s.Volumes {
		v := &s.Volumes[i]
		if v.Kind == VolumeEmptyDir && v.Memory && podLimit > 0 && (v.SizeLimitBytes <= 0 || v.SizeLimitBytes > podLimit) {
			v.SizeLimitBytes = podLimit
		}
	}
}

// probePort is a probe's port number, or the number of the container port it names.
func probePort(port spec.IntOrString, ports []spec.ContainerPort) (int, error) {
	if !port.IsString {
		return int(port.Int), nil
	}
	if n, ok := spec.NamedPort(ports, port.Str); ok {
		return int(n), nil
	}
	return 0, fmt.Errorf("%w: port name %q is not one of the container's ports", ErrConfig, port.Str)
}

func seconds(n int32) time.Duration { return time.Duration(n) * time.Second }

// envBuilder collects a container's environment in first-definition order; a later
// definition replaces the value in place, as envFrom then env do in Kubernetes.
type envBuilder struct {
	vars  []EnvVar
	index map[string]int
}

func (b *envBuilder) set(name, value string, secret bool) {
	if i, ok := b.index[name]; ok {
		b.vars[i] = EnvVar{Name: name, Value: value, Secret: secret}
		return
	}
	b.index[name] = len(b.vars)
	b.vars = append(b.vars, EnvVar{Name: name, Value: value, Secret: secret})
}

func (b *envBuilder) lookup(name string) (string, bool) {
	if i, ok := b.index[name]; ok {
		return b.vars[i].Value, true
	}
	return "", false
}

func (r *resolveContext) env(c spec.Container) (*envBuilder, error) {
	b := &envBuilder{index: map[string]int{}}
	for _, src := range c.EnvFrom {
		data, secret, err := r.envFromData(src)
		if err != nil {
			return nil, err
		}
		for _, k := range sortedKeys(data) {
			// Kubernetes skips keys that are not valid variable names (and reports an event).
			if name := src.Prefix + k; isEnvVarName(name) {
				b.set(name, data[k], secret)
			}
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			b.set(e.Name, Expand(e.Value, b.lookup), false)
			continue
		}
		value, secret, found, err := r.envValueFrom(e.ValueFrom, c)
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", e.Name, err)
		}
		if found {
			b.set(e.Name, value, secret)
		}
	}
	return b, nil
}

func (r *resolveContext) envFromData(src spec.EnvFromSource) (data map[string]string, secret bool, err error) {
	switch {
	case src.ConfigMapRef != nil:
		cm := r.set.ConfigMap(r.namespace, src.ConfigMapRef.Name)
		if cm == nil {
			return nil, false, r.missing(spec.KindConfigMap, src.ConfigMapRef.Name, "", src.ConfigMapRef.Optional)
		}
		return configMapData(cm), false, nil
	case src.SecretRef != nil:
		s := r.set.Secret(r.namespace, src.SecretRef.Name)
		if s == nil {
			return nil, true, r.missing(spec.KindSecret, src.SecretRef.Name, "", src.SecretRef.Optional)
		}
		data := make(map[string]string, len(s.Data))
		for k, v := range secretData(s) {
			data[k] = string(v)
		}
		return data, true, nil
	}
	return nil, false, fmt.Errorf("%w: envFrom names neither a ConfigMap nor a Secret", ErrConfig)
}

// envValueFrom resolves one valueFrom; found is false for an optional reference that is missing.
func (r *resolveContext) envValueFrom(src *spec.EnvVarSource, c spec.Container) (value string, secret, found bool, err error) {
	switch {
	case src.ConfigMapKeyRef != nil:
		ref := src.ConfigMapKeyRef
		cm := r.set.ConfigMap(r.namespace, ref.Name)
		if cm == nil {
			return "", false, false, r.missing(spec.KindConfigMap, ref.Name, "", ref.Optional)
		}
		v, ok := configMapData(cm)[ref.Key]
		if !ok {
			return "", false, false, r.missing(spec.KindConfigMap, ref.Name, ref.Key, ref.Optional)
		}
		return v, false, true, nil
	case src.SecretKeyRef != nil:
		ref := src.SecretKeyRef
		s := r.set.Secret(r.namespace, ref.Name)
		if s == nil {
			return "", true, false, r.missing(spec.KindSecret, ref.Name, "", ref.Optional)
		}
		v, ok := secretData(s)[ref.Key]
		if !ok {
			return "", true, false, r.missing(spec.KindSecret, ref.Name, ref.Key, ref.Optional)
		}
		return string(v), true, true, nil
	case src.FieldRef != nil:
		v, err := r.field(src.FieldRef.FieldPath, spec.EnvFieldPaths)
		return v, false, err == nil, err
	case src.ResourceFieldRef != nil:
		v, err := r.resource(src.ResourceFieldRef, c)
		return v, false, err == nil, err
	}
	return "", false, false, fmt.Errorf("%w: valueFrom names no source", ErrConfig)
}

// missing is the error for an absent ConfigMap or Secret (kind, name), or one key of it,
// saying how to fix it; nil when the reference is optional.
func (r *resolveContext) missing(kind, name, key string, optional *bool) error {
	if optional != nil && *optional {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrConfig, spec.MissingReference(kind, name, r.namespace, key))
}

func (r *resolveContext) volume(v spec.Volume) (Volume, error) {
	switch {
	case v.ConfigMap != nil:
		src := v.ConfigMap
		files, err := r.configMapFiles(src.Name, src.Items, src.Optional, fileMode(src.DefaultMode, defaultConfigMapMode))
		return Volume{Name: v.Name, Kind: VolumeConfigMap, Files: files}, err
	case v.Secret != nil:
		src := v.Secret
		files, err := r.secretFiles(src.SecretName, src.Items, src.Optional, fileMode(src.DefaultMode, defaultSecretMode))
		return Volume{Name: v.Name, Kind: VolumeSecret, Files: files}, err
	case v.DownwardAPI != nil:
		src := v.DownwardAPI
		files, err := r.downwardFiles(src.Items, fileMode(src.DefaultMode, defaultConfigMapMode))
		return Volume{Name: v.Name, Kind: VolumeDownwardAPI, Files: files}, err
	case v.Projected != nil:
		files, err := r.projectedFiles(v.Projected)
		return Volume{Name: v.Name, Kind: VolumeProjected, Files: files}, err
	case v.EmptyDir != nil:
		vol := Volume{Name: v.Name, Kind: VolumeEmptyDir, Memory: v.EmptyDir.Medium == "Memory"}
		if v.EmptyDir.SizeLimit != nil {
			vol.SizeLimitBytes = v.EmptyDir.SizeLimit.Value()
		}
		return vol, nil
	case v.HostPath != nil:
		vol := Volume{Name: v.Name, Kind: VolumeHostPath, HostPath: path.Clean(v.HostPath.Path)}
		if v.HostPath.Type != nil {
			vol.HostPathType = *v.HostPath.Type
		}
		return vol, nil
	}
	return Volume{}, fmt.Errorf("%w: volume has no configMap, secret, downwardAPI, projected, emptyDir or hostPath source", ErrConfig)
}

// configMapFiles are the files of a ConfigMap as a volume or a projection: every key, or
// only items; none when the ConfigMap is missing and optional.
func (r *resolveContext) configMapFiles(name string, items []spec.KeyToPath, optional *bool, mode fs.FileMode) ([]File, error) {
	cm := r.set.ConfigMap(r.namespace, name)
	if cm == nil {
		return nil, r.missing(spec.KindConfigMap, name, "", optional)
	}
	data := make(map[string][]byte, len(cm.Data)+len(cm.BinaryData))
	for k, s := range configMapData(cm) {
		data[k] = []byte(s)
	}
	for k, b := range cm.BinaryData {
		data[k] = b
	}
	return r.files(projection{kind: spec.KindConfigMap, name: name, data: data, items: items, mode: mode, optional: optional})
}

// secretFiles are the files of a Secret as a volume or a projection, marked secret.
func (r *resolveContext) secretFiles(name string, items []spec.KeyToPath, optional *bool, mode fs.FileMode) ([]File, error) {
	s := r.set.Secret(r.namespace, name)
	if s == nil {
		return nil, r.missing(spec.KindSecret, name, "", optional)
	}
	return r.files(projection{kind: spec.KindSecret, name: name, data: secretData(s), items: items, mode: mode, optional: optional, secret: true})
}

// projection is a ConfigMap or Secret about to become the files of a volume.
type projection struct {
	kind, name string // for messages
	data       map[string][]byte
	items      []spec.KeyToPath
	mode       fs.FileMode
	optional   *bool
	secret     bool
}

// files projects every key of p as a file, or only p.items with their own paths and modes.
func (r *resolveContext) files(p projection) ([]File, error) {
	var files []File
	add := func(key, rel string, mode fs.FileMode) error {
		if !isLocalPath(rel) {
			return fmt.Errorf("%w: %s %s: path %q leaves the volume", ErrConfig, p.kind, p.name, rel)
		}
		files = append(files, File{Path: path.Clean(rel), Mode: mode, Data: p.data[key], Secret: p.secret})
		return nil
	}
	if len(p.items) == 0 {
		for _, k := range sortedKeys(p.data) {
			if err := add(k, k, p.mode); err != nil {
				return nil, err
			}
		}
		return files, nil
	}
	for _, it := range p.items {
		if _, ok := p.data[it.Key]; !ok {
			if err := r.missing(p.kind, p.name, it.Key, p.optional); err != nil {
				return nil, err
			}
			continue
		}
		if err := add(it.Key, it.Path, fileMode(it.Mode, p.mode)); err != nil {
			return nil, err
		}
	}
	return files, nil
}

// fileMode is the permission bits of mode, or fallback when the manifest gives none.
func fileMode(mode *int32, fallback fs.FileMode) fs.FileMode {
	if mode == nil {
		return fallback
	}
	return fs.FileMode(*mode) & fs.ModePerm
}

// configMapData returns a ConfigMap's text keys.
func configMapData(cm *spec.ConfigMap) map[string]string {
	if cm.Data == nil {
		return map[string]string{}
	}
	return cm.Data
}

// secretData returns a Secret's keys with StringData merged over Data, as the API server
// does; defaulting normally did it already.
func secretData(s *spec.Secret) map[string][]byte {
	if len(s.StringData) == 0 {
		return s.Data
	}
	out := make(map[string][]byte, len(s.Data)+len(s.StringData))
	for k, v := range s.Data {
		out[k] = v
	}
	for k, v := range s.StringData {
		out[k] = []byte(v)
	}
	return out
}

// pullPolicy defaults an empty policy as Kubernetes does: Always for ":latest" or an
// untagged image, IfNotPresent otherwise.
func pullPolicy(image, policy string) PullPolicy {
	if policy != "" {
		return PullPolicy(policy)
	}
	if strings.Contains(image, "@") {
		return PullIfNotPresent
	}
	last := image[strings.LastIndex(image, "/")+1:]
	tag, tagged := "", false
	if i := strings.LastIndex(last, ":"); i >= 0 {
		tag, tagged = last[i+1:], true
	}
	if !tagged || tag == "latest" {
		return PullAlways
	}
	return PullIfNotPresent
}

func expandAll(in []string, lookup func(string) (string, bool)) []string {
	if in == nil {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = Expand(s, lookup)
	}
	return out
}

// isEnvVarName matches Kubernetes' rule for environment variable names: [-._a-zA-Z][-._a-zA-Z0-9]*.
func isEnvVarName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		letter := c == '-' || c == '.' || c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// isLocalPath reports whether p is a relative path that stays inside its root.
func isLocalPath(p string) bool {
	if p == "" || path.IsAbs(p) {
		return false
	}
	clean := path.Clean(p)
	return clean != ".." && !strings.HasPrefix(clean, "../")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
