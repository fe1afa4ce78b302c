package spec

import (
	"cmp"
	"maps"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Per-object validation: the rules the Kubernetes API server applies to the
// fields Shoal honours, run after defaulting. Each finding names the field path;
// the report turns it into a line. Maps are walked in key order so that the
// findings come out in the same order on every node.

const (
	maxConfigDataBytes   = 1 << 20   // ConfigMap and Secret data, as Kubernetes limits it
	maxAnnotationsBytes  = 256 << 10 // all annotations of an object, as Kubernetes limits them
	maxPort              = 65535
	maxFileMode          = 0o777
	minWeight, maxWeight = 1, 100
	msgPortRange         = "must be between 1 and 65535, inclusive"
	msgRequired          = "required"
	msgNotNegative       = "must be greater than or equal to 0"
	mediumMemory         = "Memory"
)

// Service types besides ServiceTypeExternalName.
const (
	serviceTypeClusterIP    = "ClusterIP"
	serviceTypeNodePort     = "NodePort"
	serviceTypeLoadBalancer = "LoadBalancer"
)

// protocols are the port protocols Kubernetes accepts, on container and Service ports.
var protocols = []string{ProtocolTCP, ProtocolUDP, ProtocolSCTP}

// root is the path of an object itself.
var root *fieldPath

func validateObject(r *report, o Object) {
	meta := root.child("metadata")
	switch o := o.(type) {
	case *Namespace:
		validateMeta(r, meta, &o.Metadata, dns1123Label, false)
	case *Deployment:
		validateMeta(r, meta, &o.Metadata, dns1123Subdomain, true)
		validateDeploymentSpec(r, root.child("spec"), &o.Spec)
	case *Service:
		validateMeta(r, meta, &o.Metadata, dns1035Label, true)
		validateServiceSpec(r, root.child("spec"), &o.Spec)
	case *ConfigMap:
		validateMeta(r, meta, &o.Metadata, dns1123Subdomain, true)
		validateConfigMap(r, o)
	case *Secret:
		r.secret = true
		validateMeta(r, meta, &o.Metadata, dns1123Subdomain, true)
		validateSecret(r, o)
	}
}

// name checks value against rule, reporting it missing when required; it reports whether the value is usable.
func (r *report) name(p *fieldPath, value string, rule nameRule, required bool) bool {
	if value == "" {
		if required {
			r.errorf(p, msgRequired)
		}
		return false
	}
	if why := rule(value); why != "" {
		r.errorf(p, "invalid value %q: %s", value, why)
		return false
	}
	return true
}

func (r *report) oneOf(p *fieldPath, value string, supported ...string) {
	switch {
	case value == "":
		r.errorf(p, msgRequired)
	case !oneOf(value, supported...):
		r.errorf(p, "unsupported value %q: supported values are %s", value, strings.Join(supported, ", "))
	}
}

func (r *report) port(p *fieldPath, n int32) {
	if n < 1 || n > maxPort {
		r.errorf(p, "%s, got %d", msgPortRange, n)
	}
}

func (r *report) notNegative(p *fieldPath, n int64) {
	if n < 0 {
		r.errorf(p, "%s, got %d", msgNotNegative, n)
	}
}

func (r *report) weight(p *fieldPath, w int32) {
	if w < minWeight || w > maxWeight {
		r.errorf(p, "must be between 1 and 100, inclusive, got %d", w)
	}
}

func (r *report) fileMode(p *fieldPath, mode *int32) {
	if mode != nil && (*mode < 0 || *mode > maxFileMode) {
		r.errorf(p, "must be a file mode between 0 and 0777 (octal), got %#o", *mode)
	}
}

func validateMeta(r *report, p *fieldPath, m *ObjectMeta, rule nameRule, namespaced bool) {
	r.name(p.child("name"), m.Name, rule, true)
	if namespaced {
		r.name(p.child("namespace"), m.Namespace, dns1123Label, true)
	}
	validateLabels(r, p.child("labels"), m.Labels)
	ap := p.child("annotations")
	size := 0
	for _, k := range slices.Sorted(maps.Keys(m.Annotations)) {
		if why := qualifiedName(k); why != "" {
			r.errorf(ap.key(k), "invalid annotation key %q: %s", k, why)
		}
		size += len(k) + len(m.Annotations[k])
	}
	if size > maxAnnotationsBytes {
		r.errorf(ap, "annotations total %d bytes, more than the limit of %d", size, maxAnnotationsBytes)
	}
}

// validateLabels checks a map of label keys to label values: labels, selectors, node selectors.
func validateLabels(r *report, p *fieldPath, labels map[string]string) bool {
	ok := true
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if why := qualifiedName(k); why != "" {
			r.errorf(p.key(k), "invalid label key %q: %s", k, why)
			ok = false
		}
		if why := labelValue(labels[k]); why != "" {
			value := strconv.Quote(labels[k])
			if r.secret {
				value = "(not shown: it may be secret)"
			}
			r.errorf(p.key(k), "invalid label value %s: %s", value, why)
			ok = false
		}
	}
	return ok
}

func validateLabelSelector(r *report, p *fieldPath, s *LabelSelector) bool {
	ok := validateLabels(r, p.child("matchLabels"), s.MatchLabels)
	for i := range s.MatchExpressions {
		ok = validateRequirement(r, p.child("matchExpressions").at(i), &s.MatchExpressions[i], false) && ok
	}
	return ok
}

// validateRequirement checks one set-based term; only node selectors may use Gt and Lt.
func validateRequirement(r *report, p *fieldPath, req *LabelSelectorRequirement, nodeSelector bool) bool {
	errs := len(r.diags)
	r.name(p.child("key"), req.Key, qualifiedName, true)
	vp := p.child("values")
	switch req.Operator {
	case OpIn, OpNotIn:
		if len(req.Values) == 0 {
			r.errorf(vp, "required when operator is %s", req.Operator)
		}
		for i, v := range req.Values {
			if why := labelValue(v); why != "" {
				r.errorf(vp.at(i), "invalid label value %q: %s", v, why)
			}
		}
	case OpExists, OpDoesNotExist:
		if len(req.Values) > 0 {
			r.errorf(vp, "must be empty when operator is %s", req.Operator)
		}
	case OpGt, OpLt:
		if !nodeSelector {
			r.errorf(p.child("operator"), "unsupported value %q: Gt and Lt are only for node selectors", req.Operator)
		} else if len(req.Values) != 1 {
			r.errorf(vp, "must hold exactly one integer when operator is %s", req.Operator)
		} else if _, err := strconv.ParseInt(req.Values[0], 10, 64); err != nil {
			r.errorf(vp.at(0), "invalid value %q: must be an integer when operator is %s", req.Values[0], req.Operator)
		}
	default:
		ops := []string{OpIn, OpNotIn, OpExists, OpDoesNotExist}
		if nodeSelector {
			ops = append(ops, OpGt, OpLt)
		}
		r.oneOf(p.child("operator"), req.Operator, ops...)
	}
	return len(r.diags) == errs
}

func validateDeploymentSpec(r *report, p *fieldPath, s *DeploymentSpec) {
	if s.Replicas != nil {
		r.notNegative(p.child("replicas"), int64(*s.Replicas))
	}
	tp := p.child("template")
	labelsPath := tp.child("metadata").child("labels")
	labelsOK := validateLabels(r, labelsPath, s.Template.Metadata.Labels)
	validateSecurityAnnotations(r, tp.child("metadata").child("annotations"), s.Template.Metadata.Annotations)
	sp := p.child("selector")
	switch {
	case s.Selector == nil:
		r.errorf(sp, "required: an apps/v1 Deployment must state its selector")
	case len(s.Selector.MatchLabels) == 0 && len(s.Selector.MatchExpressions) == 0:
		r.errorf(sp, "must not be empty: it would select every instance")
	default:
		if validateLabelSelector(r, sp, s.Selector) && labelsOK && !s.Selector.Matches(s.Template.Metadata.Labels) {
			r.errorf(labelsPath, "selector does not match template labels")
		}
	}
	validateStrategy(r, p.child("strategy"), &s.Strategy)
	r.notNegative(p.child("minReadySeconds"), int64(s.MinReadySeconds))
	if d := s.ProgressDeadlineSeconds; d != nil && *d <= s.MinReadySeconds {
		r.errorf(p.child("progressDeadlineSeconds"), "must be greater than minReadySeconds (%d), got %d", s.MinReadySeconds, *d)
	}
	validatePodSpec(r, tp.child("spec"), &s.Template.Spec)
}

func validateStrategy(r *report, p *fieldPath, s *DeploymentStrategy) {
	rp := p.child("rollingUpdate")
	switch s.Type {
	case StrategyRecreate:
		if s.RollingUpdate != nil {
			r.errorf(rp, "must not be set when type is Recreate")
		}
	case StrategyRollingUpdate:
		ru := s.RollingUpdate
		if ru == nil || ru.MaxSurge == nil || ru.MaxUnavailable == nil {
			return // only before defaulting
		}
		surge, surgeOK := r.countOrPercent(rp.child("maxSurge"), *ru.MaxSurge)
		unavailable, unavailableOK := r.countOrPercent(rp.child("maxUnavailable"), *ru.MaxUnavailable)
		if unavailableOK && ru.MaxUnavailable.IsString && unavailable > 100 {
			r.errorf(rp.child("maxUnavailable"), "must not be greater than 100%%, got %s", ru.MaxUnavailable)
		}
		if surgeOK && unavailableOK && surge == 0 && unavailable == 0 {
			r.errorf(rp.child("maxUnavailable"), "must not be 0 when maxSurge is 0: the rollout could never make progress")
		}
	default:
		r.oneOf(p.child("type"), s.Type, StrategyRollingUpdate, StrategyRecreate)
	}
}

// countOrPercent checks a non-negative count or a percentage such as "25%" and returns its number.
func (r *report) countOrPercent(p *fieldPath, v IntOrString) (int, bool) {
	if !v.IsString {
		r.notNegative(p, int64(v.Int))
		return int(v.Int), v.Int >= 0
	}
	digits, isPercent := strings.CutSuffix(v.Str, "%")
	n, err := strconv.Atoi(digits)
	if !isPercent || err != nil || n < 0 || digits[0] < '0' || digits[0] > '9' {
		r.errorf(p, "invalid value %q: must be a non-negative integer or a percentage such as 25%%", v.Str)
		return 0, false
	}
	return n, true
}

// portKey identifies a listening port within an instance.
type portKey struct {
	port     int32
	protocol string
}

func validatePodSpec(r *report, p *fieldPath, ps *PodSpec) {
	// A resourceFieldRef may name any of the instance's containers.
	all := slices.Concat(ps.InitContainers, ps.Containers)
	volumes := validateVolumes(r, p.child("volumes"), ps.Volumes, all)
	validatePodSecurity(r, p, ps)
	if len(ps.Containers) == 0 {
		r.errorf(p.child("containers"), "required: at least one container")
	}
	// Names and ports are unique across init and app containers: they share the
	// instance's network namespace, and a container is found by its name alone.
	containerNames := map[string]bool{}
	ports := map[portKey]bool{}
	portNames := map[string]bool{}
	for _, list := range []struct {
		field      string
		containers []Container
	}{{"initContainers", ps.InitContainers}, {"containers", ps.Containers}} {
		init := list.field == "initContainers"
		for i := range list.containers {
			c := &list.containers[i]
			cp := p.child(list.field).at(i)
			validateContainerSecurity(r, p, cp, ps.SecurityContext, c)
			validateContainer(r, cp, c, volumes, all)
			validateContainerRole(r, cp, c, init)
			validateLifecycle(r, cp.child("lifecycle"), c.Lifecycle, c.Ports, gracePeriod(ps))
			if c.Name != "" && containerNames[c.Name] {
				r.errorf(cp.child("name"), "duplicate container name %q", c.Name)
			}
			containerNames[c.Name] = true
			for j, port := range c.Ports {
				pp := cp.child("ports").at(j)
				k := portKey{port.ContainerPort, port.Protocol}
				if ports[k] {
					r.errorf(pp.child("containerPort"), "duplicate port %d/%s in the instance", k.port, k.protocol)
				}
				ports[k] = true
				if port.Name != "" && portNames[port.Name] {
					r.errorf(pp.child("name"), "duplicate port name %q in the instance", port.Name)
				}
				portNames[port.Name] = true
			}
		}
	}
	// The name "default" asks for nothing beyond what every instance gets.
	if ps.ServiceAccountName != "" && ps.ServiceAccountName != "default" {
		r.featureWarnf(p.child("serviceAccountName"), serviceAcct, "not honoured by Shoal: %s (the name is only reported to fieldRef spec.serviceAccountName)", noSATokens)
	}
	validateLabels(r, p.child("nodeSelector"), ps.NodeSelector)
	if ps.Affinity != nil {
		validateAffinity(r, p.child("affinity"), ps.Affinity)
	}
	validateTopologySpread(r, p.child("topologySpreadConstraints"), ps.TopologySpreadConstraints)
	if t := ps.TerminationGracePeriodSeconds; t != nil {
		r.notNegative(p.child("terminationGracePeriodSeconds"), *t)
	}
}

// validateContainerRole checks what depends on a container being an init container, as
// the Kubernetes API server does: only an init container has a restartPolicy, and only
// Always (a sidecar); an init container that is not a sidecar runs to completion, so it
// has no probes.
func validateContainerRole(r *report, p *fieldPath, c *Container, init bool) {
	rp := p.child("restartPolicy")
	switch {
	case c.RestartPolicy != nil && !init:
		r.errorf(rp, "may not be set for non-init containers (only an init container may be a sidecar, with restartPolicy Always)")
	case c.RestartPolicy != nil && *c.RestartPolicy != ContainerRestartAlways:
		r.errorf(rp, "unsupported value %q: supported values are %s", *c.RestartPolicy, ContainerRestartAlways)
	case init && !c.IsSidecar():
		for _, pr := range containerProbes(c) {
			if *pr.probe != nil {
				r.errorf(p.child(pr.field), "may not be set for init containers without restartPolicy Always: an init container runs to completion")
			}
		}
		if c.Lifecycle != nil {
			r.errorf(p.child("lifecycle"), "may not be set for init containers without restartPolicy Always: an init container runs to completion")
		}
	}
}

func validateContainer(r *report, p *fieldPath, c *Container, volumes map[string]bool, containers []Container) {
	r.name(p.child("name"), c.Name, dns1123Label, true)
	switch ip := p.child("image"); {
	case c.Image == "":
		r.errorf(ip, msgRequired)
	case strings.TrimSpace(c.Image) != c.Image:
		r.errorf(ip, "invalid value %q: must not have leading or trailing whitespace", c.Image)
	}
	r.oneOf(p.child("imagePullPolicy"), c.ImagePullPolicy, PullAlways, PullIfNotPresent, PullNever)
	for j, port := range c.Ports {
		pp := p.child("ports").at(j)
		r.port(pp.child("containerPort"), port.ContainerPort)
		r.oneOf(pp.child("protocol"), port.Protocol, protocols...)
		r.name(pp.child("name"), port.Name, ianaSvcName, false)
		if port.HostPort != 0 {
			r.port(pp.child("hostPort"), port.HostPort)
		}
		if port.HostIP != "" {
			if a, err := netip.ParseAddr(port.HostIP); err != nil || !a.Is4() {
				r.errorf(pp.child("hostIP"), "invalid value %q: must be an IPv4 address", port.HostIP)
			} else if port.HostPort == 0 {
				r.errorf(pp.child("hostIP"), "set without hostPort")
			}
		}
	}
	validateEnv(r, p.child("env"), c.Env, containers)
	validateEnvFrom(r, p.child("envFrom"), c.EnvFrom)
	validateResources(r, p.child("resources"), &c.Resources)
	for _, pr := range containerProbes(c) {
		validateProbe(r, p.child(pr.field), *pr.probe, c.Ports, pr.once)
	}
	mountPaths := map[string]bool{}
	for j, m := range c.VolumeMounts {
		mp := p.child("volumeMounts").at(j)
		if r.name(mp.child("name"), m.Name, dns1123Label, true) && !volumes[m.Name] {
			r.errorf(mp.child("name"), "volume %q is not declared in the instance's volumes", m.Name)
		}
		switch pp := mp.child("mountPath"); {
		case m.MountPath == "":
			r.errorf(pp, msgRequired)
		case !path.IsAbs(m.MountPath):
			r.errorf(pp, "invalid value %q: must be an absolute path", m.MountPath)
		case mountPaths[path.Clean(m.MountPath)]:
			r.errorf(pp, "duplicate mountPath %q", m.MountPath)
		}
		mountPaths[path.Clean(m.MountPath)] = true
		r.name(mp.child("subPath"), m.SubPath, relativePath, false)
	}
}

// relativePath is the syntax of paths inside a volume: relative and never leaving it.
func relativePath(s string) string {
	if path.IsAbs(s) || slices.Contains(strings.Split(s, "/"), "..") {
		return "must be a relative path without '..'"
	}
	return ""
}

// probeField is one of a container's probes, named by its field.
type probeField struct {
	field string
	probe **Probe
	// once is set for liveness and startup probes, whose successThreshold must be 1.
	once bool
}

func containerProbes(c *Container) []probeField {
	return []probeField{
		{"livenessProbe", &c.LivenessProbe, true},
		{"readinessProbe", &c.ReadinessProbe, false},
		{"startupProbe", &c.StartupProbe, true},
	}
}

func probeHandlers(p *Probe) int {
	return count(p.HTTPGet != nil, p.TCPSocket != nil, p.Exec != nil, p.GRPC != nil)
}

func validateProbe(r *report, p *fieldPath, pr *Probe, ports []ContainerPort, once bool) {
	if pr == nil {
		return
	}
	if n := probeHandlers(pr); n != 1 {
		r.errorf(p, "must have exactly one handler of httpGet, tcpSocket, exec and grpc, has %d", n)
	}
	validateHTTPGet(r, p, pr.HTTPGet, ports)
	if t := pr.TCPSocket; t != nil {
		validateProbePort(r, p.child("tcpSocket").child("port"), t.Port, ports)
	}
	validateExec(r, p, pr.Exec)
	if g := pr.GRPC; g != nil {
		r.port(p.child("grpc").child("port"), g.Port)
	}
	r.notNegative(p.child("initialDelaySeconds"), int64(pr.InitialDelaySeconds))
	for _, f := range []struct {
		name  string
		value int32
	}{{"timeoutSeconds", pr.TimeoutSeconds}, {"periodSeconds", pr.PeriodSeconds}, {"successThreshold", pr.SuccessThreshold}, {"failureThreshold", pr.FailureThreshold}} {
		if f.value < 1 {
			r.errorf(p.child(f.name), "must be greater than or equal to 1, got %d", f.value)
		}
	}
	if once && pr.SuccessThreshold != 1 {
		r.errorf(p.child("successThreshold"), "must be 1 for liveness and startup probes, got %d", pr.SuccessThreshold)
	}
}

// validateHTTPGet checks the httpGet handler of a probe or hook at p, if it has one.
func validateHTTPGet(r *report, p *fieldPath, h *HTTPGetAction, ports []ContainerPort) {
	if h == nil {
		return
	}
	hp := p.child("httpGet")
	validateProbePort(r, hp.child("port"), h.Port, ports)
	r.oneOf(hp.child("scheme"), h.Scheme, "HTTP", "HTTPS")
	for i, hdr := range h.HTTPHeaders {
		if hdr.Name == "" {
			r.errorf(hp.child("httpHeaders").at(i).child("name"), msgRequired)
		}
	}
}

// validateExec checks the exec handler of a probe or hook at p, if it has one.
func validateExec(r *report, p *fieldPath, e *ExecAction) {
	if e != nil && len(e.Command) == 0 {
		r.errorf(p.child("exec").child("command"), msgRequired)
	}
}

// validateLifecycle checks a container's hooks: one action each, and a sleep that fits
// in the grace period (it could never end otherwise), as the Kubernetes API server does.
func validateLifecycle(r *report, p *fieldPath, l *Lifecycle, ports []ContainerPort, grace int64) {
	if l == nil {
		return
	}
	for _, h := range []struct {
		field   string
		handler *LifecycleHandler
	}{{"postStart", l.PostStart}, {"preStop", l.PreStop}} {
		if h.handler == nil {
			continue
		}
		hp := p.child(h.field)
		if n := count(h.handler.Exec != nil, h.handler.HTTPGet != nil, h.handler.Sleep != nil); n != 1 {
			r.errorf(hp, "must have exactly one handler of exec, httpGet and sleep, has %d", n)
		}
		validateHTTPGet(r, hp, h.handler.HTTPGet, ports)
		validateExec(r, hp, h.handler.Exec)
		if s := h.handler.Sleep; s != nil && (s.Seconds < 0 || s.Seconds > grace) {
			r.errorf(hp.child("sleep").child("seconds"), "must be between 0 and terminationGracePeriodSeconds (%d), got %d", grace, s.Seconds)
		}
	}
}

// gracePeriod is a pod's terminationGracePeriodSeconds, defaulted.
func gracePeriod(ps *PodSpec) int64 {
	if ps.TerminationGracePeriodSeconds == nil {
		return defaultTerminationGracePeriodSeconds
	}
	return *ps.TerminationGracePeriodSeconds
}

// validateProbePort checks a port number, or a port name that must be one of the container's ports.
func validateProbePort(r *report, p *fieldPath, port IntOrString, ports []ContainerPort) {
	if !port.IsString {
		r.port(p, port.Int)
		return
	}
	if !r.name(p, port.Str, ianaSvcName, true) {
		return
	}
	if _, ok := NamedPort(ports, port.Str); !ok {
		r.errorf(p, "port name %q is not one of the container's ports", port.Str)
	}
}

func validateEnv(r *report, p *fieldPath, env []EnvVar, containers []Container) {
	for i, e := range env {
		ep := p.at(i)
		r.name(ep.child("name"), e.Name, envVarName, true)
		vf := e.ValueFrom
		if vf == nil {
			continue
		}
		vp := ep.child("valueFrom")
		if e.Value != "" {
			r.errorf(vp, "must not be set when value is set")
		}
		if n := count(vf.ConfigMapKeyRef != nil, vf.SecretKeyRef != nil, vf.FieldRef != nil, vf.ResourceFieldRef != nil); n != 1 {
			r.errorf(vp, "must have exactly one of configMapKeyRef, secretKeyRef, fieldRef and resourceFieldRef, has %d", n)
		}
		if ks := vf.ConfigMapKeyRef; ks != nil {
			validateKeySelector(r, vp.child("configMapKeyRef"), ks)
		}
		if ks := vf.SecretKeyRef; ks != nil {
			validateKeySelector(r, vp.child("secretKeyRef"), ks)
		}
		if f := vf.FieldRef; f != nil {
			validateObjectField(r, vp.child("fieldRef"), f, EnvFieldPaths)
		}
		if f := vf.ResourceFieldRef; f != nil {
			validateResourceField(r, vp.child("resourceFieldRef"), f, containers, false)
		}
	}
}

func validateKeySelector(r *report, p *fieldPath, ks *KeySelector) {
	r.name(p.child("name"), ks.Name, dns1123Subdomain, true)
	r.name(p.child("key"), ks.Key, configMapKey, true)
}

func validateEnvFrom(r *report, p *fieldPath, envFrom []EnvFromSource) {
	for i, ef := range envFrom {
		ep := p.at(i)
		if n := count(ef.ConfigMapRef != nil, ef.SecretRef != nil); n != 1 {
			r.errorf(ep, "must have exactly one of configMapRef and secretRef, has %d", n)
		}
		r.name(ep.child("prefix"), ef.Prefix, envVarName, false)
		if ref := ef.ConfigMapRef; ref != nil {
			r.name(ep.child("configMapRef").child("name"), ref.Name, dns1123Subdomain, true)
		}
		if ref := ef.SecretRef; ref != nil {
			r.name(ep.child("secretRef").child("name"), ref.Name, dns1123Subdomain, true)
		}
	}
}

func validateResources(r *report, p *fieldPath, res *Resources) {
	for _, side := range []struct {
		field      string
		quantities map[string]Quantity
	}{{"requests", res.Requests}, {"limits", res.Limits}} {
		sp := p.child(side.field)
		for _, name := range slices.Sorted(maps.Keys(side.quantities)) {
			q := side.quantities[name]
			switch {
			case name != ResourceCPU && name != ResourceMemory:
				r.warnf(sp.key(name), "resource %q is not honoured by Shoal: only cpu and memory are", name)
			case q.Err() != nil:
				r.errorf(sp.key(name), "invalid quantity %q", q.String())
			case side.field == "requests" && res.Limits[name].Err() == nil && !res.Limits[name].IsZero():
				// Bounded by its limit, which is bounded, or refused for exceeding it.
			default:
				r.bounded(sp.key(name), name, q)
			}
		}
	}
	for _, name := range []string{ResourceCPU, ResourceMemory} {
		req, hasReq := res.Requests[name]
		limit, hasLimit := res.Limits[name]
		if hasReq && hasLimit && req.Err() == nil && limit.Err() == nil && req.MilliValue() > limit.MilliValue() {
			r.errorf(p.child("requests").key(name), "must be less than or equal to the %s limit of %s, got %s", name, limit, req)
		}
	}
}

// bounded refuses a CPU or memory quantity above MaxCPUMilli or MaxMemoryBytes: beyond
// them, derived figures such as the CFS quota overflow (1e11 CPUs became 0.01 CPU).
func (r *report) bounded(p *fieldPath, resource string, q Quantity) {
	switch {
	case resource == ResourceCPU && q.MilliValue() > MaxCPUMilli:
		r.errorf(p, "%s is more than the limit of %d CPUs", q, MaxCPUMilli/1000)
	case resource == ResourceMemory && q.Value() > MaxMemoryBytes:
		r.errorf(p, "%s is more than the limit of 1Pi bytes", q)
	}
}

func validateVolumes(r *report, p *fieldPath, volumes []Volume, containers []Container) map[string]bool {
	names := map[string]bool{}
	for i := range volumes {
		v := &volumes[i]
		vp := p.at(i)
		if r.name(vp.child("name"), v.Name, dns1123Label, true) && names[v.Name] {
			r.errorf(vp.child("name"), "duplicate volume name %q", v.Name)
		}
		names[v.Name] = true
		validateVolumeSource(r, vp, v)
		if d := v.DownwardAPI; d != nil {
			dp := vp.child("downwardAPI")
			r.fileMode(dp.child("defaultMode"), d.DefaultMode)
			validateDownwardFiles(r, dp.child("items"), d.Items, containers, paths{})
		}
		if pr := v.Projected; pr != nil {
			validateProjected(r, vp.child("projected"), pr, containers)
		}
		if h := v.HostPath; h != nil {
			validateHostPath(r, vp.child("hostPath"), h)
		}
		if cm := v.ConfigMap; cm != nil {
			sp := vp.child("configMap")
			r.name(sp.child("name"), cm.Name, dns1123Subdomain, true)
			validateKeyToPaths(r, sp.child("items"), cm.Items)
			r.fileMode(sp.child("defaultMode"), cm.DefaultMode)
		}
		if s := v.Secret; s != nil {
			sp := vp.child("secret")
			r.name(sp.child("secretName"), s.SecretName, dns1123Subdomain, true)
			validateKeyToPaths(r, sp.child("items"), s.Items)
			r.fileMode(sp.child("defaultMode"), s.DefaultMode)
		}
		if e := v.EmptyDir; e != nil {
			ep := vp.child("emptyDir")
			if e.Medium != "" && e.Medium != mediumMemory {
				r.errorf(ep.child("medium"), "unsupported value %q: supported values are \"\" (disk) and Memory", e.Medium)
			}
			if e.SizeLimit != nil && e.SizeLimit.Err() != nil {
				r.errorf(ep.child("sizeLimit"), "invalid quantity %q", e.SizeLimit.String())
			} else if e.SizeLimit != nil {
				r.bounded(ep.child("sizeLimit"), ResourceMemory, *e.SizeLimit)
				if e.Medium != mediumMemory && e.SizeLimit.Value() <= MaxMemoryBytes {
					// Kubernetes evicts the pod when the directory outgrows it; Shoal does not
					// measure disk use, so saying so beats pretending.
					r.warnf(ep.child("sizeLimit"), "not enforced by Shoal for a disk emptyDir (only medium Memory is limited)")
				}
			}
		}
	}
	return names
}

// validateVolumeSource checks that a volume has exactly one source. A Kubernetes
// source Shoal does not honour (persistentVolumeClaim, nfs, ...) counts as one: the
// decoder has already named it as the error.
func validateVolumeSource(r *report, vp *fieldPath, v *Volume) {
	n := count(v.ConfigMap != nil, v.Secret != nil, v.EmptyDir != nil, v.HostPath != nil, v.DownwardAPI != nil, v.Projected != nil)
	for _, name := range unsupportedVolumeSources {
		if r.present(vp.child(name)) {
			n++
		}
	}
	if n != 1 {
		r.errorf(vp, "must have exactly one source (Shoal supports %s), has %d", supportedVolumeSources, n)
	}
}

func validateKeyToPaths(r *report, p *fieldPath, items []KeyToPath) {
	for i, item := range items {
		ip := p.at(i)
		r.name(ip.child("key"), item.Key, configMapKey, true)
		r.name(ip.child("path"), item.Path, relativePath, true)
		r.fileMode(ip.child("mode"), item.Mode)
	}
}

func validateAffinity(r *report, p *fieldPath, a *Affinity) {
	if na := a.NodeAffinity; na != nil {
		np := p.child("nodeAffinity")
		if req := na.Required; req != nil {
			tp := np.child("requiredDuringSchedulingIgnoredDuringExecution").child("nodeSelectorTerms")
			if len(req.NodeSelectorTerms) == 0 {
				r.errorf(tp, "required: at least one term")
			}
			for i := range req.NodeSelectorTerms {
				validateNodeSelectorTerm(r, tp.at(i), &req.NodeSelectorTerms[i])
			}
		}
		for i := range na.Preferred {
			pp := np.child("preferredDuringSchedulingIgnoredDuringExecution").at(i)
			r.weight(pp.child("weight"), na.Preferred[i].Weight)
			validateNodeSelectorTerm(r, pp.child("preference"), &na.Preferred[i].Preference)
		}
	}
	validatePodAffinity(r, p.child("podAffinity"), a.PodAffinity)
	validatePodAffinity(r, p.child("podAntiAffinity"), a.PodAntiAffinity)
}

func validateNodeSelectorTerm(r *report, p *fieldPath, t *NodeSelectorTerm) {
	for i := range t.MatchExpressions {
		validateRequirement(r, p.child("matchExpressions").at(i), &t.MatchExpressions[i], true)
	}
}

func validatePodAffinity(r *report, p *fieldPath, pa *PodAffinity) {
	if pa == nil {
		return
	}
	for i := range pa.Required {
		validatePodAffinityTerm(r, p.child("requiredDuringSchedulingIgnoredDuringExecution").at(i), &pa.Required[i])
	}
	for i := range pa.Preferred {
		wp := p.child("preferredDuringSchedulingIgnoredDuringExecution").at(i)
		r.weight(wp.child("weight"), pa.Preferred[i].Weight)
		validatePodAffinityTerm(r, wp.child("podAffinityTerm"), &pa.Preferred[i].PodAffinityTerm)
	}
}

func validatePodAffinityTerm(r *report, p *fieldPath, t *PodAffinityTerm) {
	r.name(p.child("topologyKey"), t.TopologyKey, qualifiedName, true)
	if t.LabelSelector != nil {
		validateLabelSelector(r, p.child("labelSelector"), t.LabelSelector)
	}
	for i, ns := range t.Namespaces {
		r.name(p.child("namespaces").at(i), ns, dns1123Label, true)
	}
}

func validateTopologySpread(r *report, p *fieldPath, constraints []TopologySpreadConstraint) {
	seen := map[[2]string]bool{}
	for i := range constraints {
		c := &constraints[i]
		cp := p.at(i)
		if c.MaxSkew <= 0 {
			r.errorf(cp.child("maxSkew"), "must be greater than 0, got %d", c.MaxSkew)
		}
		r.name(cp.child("topologyKey"), c.TopologyKey, qualifiedName, true)
		r.oneOf(cp.child("whenUnsatisfiable"), c.WhenUnsatisfiable, DoNotSchedule, ScheduleAnyway)
		if c.LabelSelector != nil {
			validateLabelSelector(r, cp.child("labelSelector"), c.LabelSelector)
		}
		k := [2]string{c.TopologyKey, c.WhenUnsatisfiable}
		if seen[k] {
			r.errorf(cp, "duplicate constraint for topologyKey %q and whenUnsatisfiable %q", k[0], k[1])
		}
		seen[k] = true
	}
}

func validateServiceSpec(r *report, p *fieldPath, s *ServiceSpec) {
	switch s.Type {
	case serviceTypeClusterIP, serviceTypeNodePort:
	case serviceTypeLoadBalancer:
		r.warnf(p.child("type"), "type LoadBalancer: Shoal has no load balancer to provision; served as NodePort on every node")
	case ServiceTypeExternalName:
		validateExternalName(r, p, s)
		return
	default:
		r.oneOf(p.child("type"), s.Type, serviceTypeClusterIP, serviceTypeNodePort, serviceTypeLoadBalancer, ServiceTypeExternalName)
	}
	if s.ExternalName != "" {
		r.errorf(p.child("externalName"), "must not be set unless type is ExternalName")
	}
	headless := s.ClusterIP == ClusterIPNone
	if s.ClusterIP != "" && !headless {
		if a, err := netip.ParseAddr(s.ClusterIP); err != nil || !a.Is4() {
			r.errorf(p.child("clusterIP"), "invalid value %q: must be None or an IPv4 address in the cluster's service range", s.ClusterIP)
		}
	}
	nodePorts := s.Type == serviceTypeNodePort || s.Type == serviceTypeLoadBalancer
	validateLabels(r, p.child("selector"), s.Selector)
	if len(s.Selector) == 0 {
		r.warnf(p.child("selector"), "not set: Shoal manages no endpoints for a Service without a selector")
	}
	pp := p.child("ports")
	if len(s.Ports) == 0 && !headless {
		r.errorf(pp, "required: at least one port (only a headless Service, clusterIP: None, may have none)")
	}
	names := map[string]bool{}
	ports := map[portKey]bool{}
	for i, port := range s.Ports {
		ip := pp.at(i)
		switch np := ip.child("name"); {
		case port.Name == "" && len(s.Ports) > 1:
			r.errorf(np, "required when the Service has more than one port")
		case port.Name != "" && names[port.Name]:
			r.errorf(np, "duplicate port name %q", port.Name)
		default:
			r.name(np, port.Name, dns1123Label, false)
		}
		names[port.Name] = true
		r.port(ip.child("port"), port.Port)
		r.oneOf(ip.child("protocol"), port.Protocol, protocols...)
		if port.Protocol == ProtocolSCTP {
			r.warnf(ip.child("protocol"), "SCTP Service ports are not proxied by Shoal: the virtual IP and node ports carry TCP and UDP only (DNS still names the port)")
		}
		if port.NodePort != 0 {
			if !nodePorts {
				r.errorf(ip.child("nodePort"), "set on a Service of type %s: only NodePort and LoadBalancer Services have node ports", cmp.Or(s.Type, serviceTypeClusterIP))
			} else {
				r.port(ip.child("nodePort"), port.NodePort)
			}
		}
		k := portKey{port.Port, port.Protocol}
		if ports[k] {
			r.errorf(ip.child("port"), "duplicate port %d/%s", k.port, k.protocol)
		}
		ports[k] = true
		// A targetPort equal to port (as defaulting makes it) was checked as port.
		switch tp := port.TargetPort; {
		case tp == nil || *tp == FromInt(port.Port):
		case tp.IsString:
			r.name(ip.child("targetPort"), tp.Str, ianaSvcName, true)
		default:
			r.port(ip.child("targetPort"), tp.Int)
		}
	}
}

// validateExternalName checks a Service that is only a DNS alias, as Kubernetes does: a
// target that is a DNS-1123 subdomain (a trailing dot allowed), no cluster IP. Its ports
// and selector are allowed and unused.
func validateExternalName(r *report, p *fieldPath, s *ServiceSpec) {
	ep := p.child("externalName")
	r.name(ep, strings.TrimSuffix(s.ExternalName, "."), dns1123Subdomain, true)
	if s.ClusterIP != "" {
		r.errorf(p.child("clusterIP"), "must not be set when type is ExternalName (got %q)", s.ClusterIP)
	}
	if len(s.Selector) > 0 {
		r.warnf(p.child("selector"), "ignored: an ExternalName Service is a DNS alias to %q and has no endpoints", s.ExternalName)
	}
	for i, port := range s.Ports {
		r.port(p.child("ports").at(i).child("port"), port.Port)
		r.oneOf(p.child("ports").at(i).child("protocol"), port.Protocol, protocols...)
	}
}

func validateConfigMap(r *report, cm *ConfigMap) {
	size := 0
	for _, k := range slices.Sorted(maps.Keys(cm.Data)) {
		r.name(root.child("data").key(k), k, configMapKey, true)
		size += len(cm.Data[k])
	}
	for _, k := range slices.Sorted(maps.Keys(cm.BinaryData)) {
		kp := root.child("binaryData").key(k)
		r.name(kp, k, configMapKey, true)
		if _, dup := cm.Data[k]; dup {
			r.errorf(kp, "key %q is also in data", k)
		}
		size += len(cm.BinaryData[k])
	}
	r.dataSize(size)
}

func validateSecret(r *report, s *Secret) {
	size := 0
	dataPath, stringDataPath := root.child("data"), root.child("stringData")
	for _, k := range slices.Sorted(maps.Keys(s.Data)) {
		kp := dataPath.key(k)
		// Defaulting moved stringData into data; report where the key was written.
		if !r.present(kp) && r.present(stringDataPath.key(k)) {
			kp = stringDataPath.key(k)
		}
		r.name(kp, k, configMapKey, true)
		size += len(s.Data[k])
	}
	for _, k := range slices.Sorted(maps.Keys(s.StringData)) {
		if _, merged := s.Data[k]; !merged { // only objects built in code still have stringData
			r.name(stringDataPath.key(k), k, configMapKey, true)
			size += len(s.StringData[k])
		}
	}
	r.dataSize(size)
}

func (r *report) dataSize(size int) {
	if size > maxConfigDataBytes {
		r.errorf(root, "data totals %d bytes, more than the limit of %d", size, maxConfigDataBytes)
	}
}

func count(conds ...bool) int {
	n := 0
	for _, c := range conds {
		if c {
			n++
		}
	}
	return n
}
