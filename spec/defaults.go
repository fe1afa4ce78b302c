package spec

import "strings"

// Defaults as the Kubernetes API server applies them (k8s.io/kubernetes/pkg/apis/*/v1/defaults.go),
// so that a manifest means in Shoal what it means in a cluster.
const (
	defaultReplicas                      = 1
	defaultProgressDeadlineSeconds       = 600
	defaultTerminationGracePeriodSeconds = 30
	defaultMaxSurge                      = "25%"
	defaultMaxUnavailable                = "25%"
	defaultProbeTimeoutSeconds           = 1
	defaultProbePeriodSeconds            = 10
	defaultProbeSuccessThreshold         = 1
	defaultProbeFailureThreshold         = 3
	defaultVolumeMode                    = 0o644
	defaultSecretType                    = "Opaque"
)

// SetDefaults fills in what the manifest left out, as Kubernetes does. Load
// applies it to every object before validation; call it on objects built in code
// before Validate.
func SetDefaults(o Object) {
	if _, ok := o.(*Namespace); !ok && o.Meta().Namespace == "" {
		o.Meta().Namespace = DefaultNamespace
	}
	switch o := o.(type) {
	case *Deployment:
		defaultDeployment(o)
	case *Service:
		defaultService(o)
	case *Secret:
		defaultSecret(o)
	}
}

func defaultDeployment(d *Deployment) {
	s := &d.Spec
	if s.Replicas == nil {
		s.Replicas = ptr[int32](defaultReplicas)
	}
	if s.ProgressDeadlineSeconds == nil {
		s.ProgressDeadlineSeconds = ptr[int32](defaultProgressDeadlineSeconds)
	}
	if s.Strategy.Type == "" {
		s.Strategy.Type = StrategyRollingUpdate
	}
	if s.Strategy.Type == StrategyRollingUpdate {
		if s.Strategy.RollingUpdate == nil {
			s.Strategy.RollingUpdate = &RollingUpdateDeployment{}
		}
		ru := s.Strategy.RollingUpdate
		if ru.MaxSurge == nil {
			ru.MaxSurge = ptr(FromString(defaultMaxSurge))
		}
		if ru.MaxUnavailable == nil {
			ru.MaxUnavailable = ptr(FromString(defaultMaxUnavailable))
		}
	}
	defaultPodSpec(&s.Template.Spec)
}

func defaultPodSpec(ps *PodSpec) {
	if ps.TerminationGracePeriodSeconds == nil {
		ps.TerminationGracePeriodSeconds = ptr[int64](defaultTerminationGracePeriodSeconds)
	}
	for i := range ps.InitContainers {
		defaultContainer(&ps.InitContainers[i])
	}
	for i := range ps.Containers {
		defaultContainer(&ps.Containers[i])
	}
	for i := range ps.Volumes {
		v := &ps.Volumes[i]
		if v.ConfigMap != nil && v.ConfigMap.DefaultMode == nil {
			v.ConfigMap.DefaultMode = ptr[int32](defaultVolumeMode)
		}
		if v.Secret != nil && v.Secret.DefaultMode == nil {
			v.Secret.DefaultMode = ptr[int32](defaultVolumeMode)
		}
	}
}

func defaultContainer(c *Container) {
	if c.ImagePullPolicy == "" {
		c.ImagePullPolicy = PullIfNotPresent
		if tag := imageTag(c.Image); tag == "" || tag == "latest" {
			c.ImagePullPolicy = PullAlways
		}
	}
	for i := range c.Ports {
		if c.Ports[i].Protocol == "" {
			c.Ports[i].Protocol = ProtocolTCP
		}
	}
	// Requests default to limits resource by resource: a container that states
	// only a memory limit reserves that much memory. Kubernetes copies every
	// resource; Shoal honours only these two, and validation warns about the rest.
	for _, name := range []string{ResourceCPU, ResourceMemory} {
		limit, hasLimit := c.Resources.Limits[name]
		if _, hasRequest := c.Resources.Requests[name]; hasLimit && !hasRequest && limit.Err() == nil {
			if c.Resources.Requests == nil {
				c.Resources.Requests = map[string]Quantity{}
			}
			c.Resources.Requests[name] = limit
		}
	}
	for _, p := range []*Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
		if p != nil {
			defaultProbe(p)
		}
	}
	if l := c.Lifecycle; l != nil {
		for _, h := range []*LifecycleHandler{l.PostStart, l.PreStop} {
			if h != nil {
				defaultHTTPGet(h.HTTPGet)
			}
		}
	}
}

// imageTag returns the tag of an image reference, "" when it has none. An image
// pinned by digest (name@sha256:…) counts as tagged: it never changes, so
// Kubernetes does not pull it always.
func imageTag(image string) string {
	if name, digest, ok := strings.Cut(image, "@"); ok {
		if tag := imageTag(name); tag != "" {
			return tag
		}
		return digest
	}
	// A colon after the last slash starts the tag; one before it belongs to a registry port.
	slash := strings.LastIndexByte(image, '/')
	if colon := strings.LastIndexByte(image, ':'); colon > slash {
		return image[colon+1:]
	}
	return ""
}

func defaultProbe(p *Probe) {
	setIfZero(&p.TimeoutSeconds, defaultProbeTimeoutSeconds)
	setIfZero(&p.PeriodSeconds, defaultProbePeriodSeconds)
	setIfZero(&p.SuccessThreshold, defaultProbeSuccessThreshold)
	setIfZero(&p.FailureThreshold, defaultProbeFailureThreshold)
	defaultHTTPGet(p.HTTPGet)
}

// defaultHTTPGet defaults the httpGet handler of a probe or hook, if there is one.
func defaultHTTPGet(h *HTTPGetAction) {
	if h == nil {
		return
	}
	if h.Path == "" {
		h.Path = "/"
	}
	if h.Scheme == "" {
		h.Scheme = "HTTP"
	}
}

func defaultService(s *Service) {
	if s.Spec.Type == "" {
		s.Spec.Type = serviceTypeClusterIP
	}
	for i := range s.Spec.Ports {
		p := &s.Spec.Ports[i]
		if p.Protocol == "" {
			p.Protocol = ProtocolTCP
		}
		if p.TargetPort == nil || *p.TargetPort == FromInt(0) || *p.TargetPort == FromString("") {
			p.TargetPort = ptr(FromInt(p.Port))
		}
	}
}

// defaultSecret merges stringData into data, stringData winning, as the API
// server does on write; what is stored and used has only data.
func defaultSecret(s *Secret) {
	if s.Type == "" {
		s.Type = defaultSecretType
	}
	if len(s.StringData) > 0 && s.Data == nil {
		s.Data = make(map[string][]byte, len(s.StringData))
	}
	for k, v := range s.StringData {
		s.Data[k] = []byte(v)
	}
	s.StringData = nil
}

func setIfZero(v *int32, def int32) {
	if *v == 0 {
		*v = def
	}
}

func ptr[T any](v T) *T { return &v }
