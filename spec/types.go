package spec

import "time"

// The API versions and kinds Shoal honours. Other real Kubernetes kinds, and kinds of
// other API groups, are skipped with a warning; a kind a built-in group lacks is an error.
const (
	KindDeployment = "Deployment"
	KindService    = "Service"
	KindConfigMap  = "ConfigMap"
	KindSecret     = "Secret"
	KindNamespace  = "Namespace"

	APIVersionApps = "apps/v1"
	APIVersionCore = "v1"
)

// DefaultNamespace is the namespace of an object whose metadata names none.
const DefaultNamespace = "default"

// Source says where an object was declared: the file (relative to the
// manifest root, slash-separated) and the 1-based line of its document start, or 0
// for an object a kustomization rendered (File is then the kustomization file).
type Source struct {
	File string
	Line int
}

// String renders a Source as "file:line", or "file" without a line.
func (s Source) String() string {
	if s.Line == 0 {
		return s.File
	}
	return s.File + ":" + itoa(s.Line)
}

// TypeMeta is the apiVersion/kind header of every manifest document.
type TypeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

// ObjectMeta is the subset of Kubernetes object metadata Shoal honours.
type ObjectMeta struct {
	Name        string            `json:"name,omitempty"`
	Namespace   string            `json:"namespace,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Object is implemented by every top-level manifest kind.
type Object interface {
	// Key identifies the object within one revision: kind, namespace and name.
	Key() Key
	// Meta returns the object's metadata for reading and defaulting.
	Meta() *ObjectMeta
	// Origin returns where the object was declared.
	Origin() Source
}

// Key identifies an object within a revision. Two documents with the same Key are an error.
type Key struct {
	Kind      string
	Namespace string
	Name      string
}

// String renders a Key as "Kind/namespace/name" (namespace omitted for Namespaces).
func (k Key) String() string {
	if k.Namespace == "" {
		return k.Kind + "/" + k.Name
	}
	return k.Kind + "/" + k.Namespace + "/" + k.Name
}

// Namespace is a v1 Namespace. It only groups names; Shoal attaches no quota to it.
type Namespace struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta `json:"metadata"`
	Source   Source     `json:"-"`
}

// Deployment is an apps/v1 Deployment: a replicated, rolling-updated workload.
type Deployment struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta     `json:"metadata"`
	Spec     DeploymentSpec `json:"spec"`
	Source   Source         `json:"-"`
}

// DeploymentSpec is the desired state of a Deployment.
type DeploymentSpec struct {
	// Replicas defaults to 1.
	Replicas *int32         `json:"replicas,omitempty"`
	Selector *LabelSelector `json:"selector,omitempty"`
	Template PodTemplate    `json:"template"`
	// Strategy defaults to RollingUpdate with maxSurge and maxUnavailable 25%.
	Strategy        DeploymentStrategy `json:"strategy,omitempty"`
	MinReadySeconds int32              `json:"minReadySeconds,omitempty"`
	// ProgressDeadlineSeconds defaults to 600.
	ProgressDeadlineSeconds *int32 `json:"progressDeadlineSeconds,omitempty"`
}

// Deployment strategy types.
const (
	StrategyRollingUpdate = "RollingUpdate"
	StrategyRecreate      = "Recreate"
)

// DeploymentStrategy says how instances are replaced on an update.
type DeploymentStrategy struct {
	Type          string                   `json:"type,omitempty"`
	RollingUpdate *RollingUpdateDeployment `json:"rollingUpdate,omitempty"`
}

// RollingUpdateDeployment bounds a rolling update; each value is a count or a percentage of replicas.
type RollingUpdateDeployment struct {
	MaxUnavailable *IntOrString `json:"maxUnavailable,omitempty"`
	MaxSurge       *IntOrString `json:"maxSurge,omitempty"`
}

// LabelSelector selects objects by labels; all of its terms must hold.
type LabelSelector struct {
	MatchLabels      map[string]string          `json:"matchLabels,omitempty"`
	MatchExpressions []LabelSelectorRequirement `json:"matchExpressions,omitempty"`
}

// Label selector operators.
const (
	OpIn           = "In"
	OpNotIn        = "NotIn"
	OpExists       = "Exists"
	OpDoesNotExist = "DoesNotExist"
	OpGt           = "Gt" // node selector requirements only
	OpLt           = "Lt" // node selector requirements only
)

// LabelSelectorRequirement is one set-based term of a LabelSelector.
type LabelSelectorRequirement struct {
	Key      string   `json:"key"`
	Operator string   `json:"operator"`
	Values   []string `json:"values,omitempty"`
}

// PodTemplate describes the instances a Deployment creates.
type PodTemplate struct {
	Metadata ObjectMeta `json:"metadata,omitempty"`
	Spec     PodSpec    `json:"spec"`
}

// PodSpec is the subset of a Kubernetes PodSpec that Shoal honours.
type PodSpec struct {
	// InitContainers run before Containers, one at a time in order, each to completion;
	// one with restartPolicy Always is a sidecar: it starts in its turn and runs alongside
	// Containers until the instance stops (see docs/init-containers.md).
	InitContainers            []Container                `json:"initContainers,omitempty"`
	Containers                []Container                `json:"containers"`
	Volumes                   []Volume                   `json:"volumes,omitempty"`
	NodeSelector              map[string]string          `json:"nodeSelector,omitempty"`
	Affinity                  *Affinity                  `json:"affinity,omitempty"`
	TopologySpreadConstraints []TopologySpreadConstraint `json:"topologySpreadConstraints,omitempty"`
	// TerminationGracePeriodSeconds defaults to 30.
	TerminationGracePeriodSeconds *int64              `json:"terminationGracePeriodSeconds,omitempty"`
	SecurityContext               *PodSecurityContext `json:"securityContext,omitempty"`
	// HostNetwork, HostPID and HostIPC share the node's namespaces; a node refuses each
	// unless its agent allows it by flag. Every instance uses the node's network today
	// whether or not it asks (see docs/security-context.md).
	HostNetwork bool `json:"hostNetwork,omitempty"`
	HostPID     bool `json:"hostPID,omitempty"`
	HostIPC     bool `json:"hostIPC,omitempty"`
	// ServiceAccountName is reported to fieldRef spec.serviceAccountName; it defaults to
	// "default". Shoal has no service accounts: it grants nothing.
	ServiceAccountName string `json:"serviceAccountName,omitempty"`
	// HostUsers false (user namespaces) is refused.
	HostUsers *bool `json:"hostUsers,omitempty"`
}

// Image pull policies.
const (
	PullAlways       = "Always"
	PullIfNotPresent = "IfNotPresent"
	PullNever        = "Never"
)

// Container is one process of an instance.
type Container struct {
	Name       string          `json:"name"`
	Image      string          `json:"image"`
	Command    []string        `json:"command,omitempty"`
	Args       []string        `json:"args,omitempty"`
	WorkingDir string          `json:"workingDir,omitempty"`
	Env        []EnvVar        `json:"env,omitempty"`
	EnvFrom    []EnvFromSource `json:"envFrom,omitempty"`
	Ports      []ContainerPort `json:"ports,omitempty"`
	Resources  Resources       `json:"resources,omitempty"`
	// ImagePullPolicy defaults as Kubernetes does: Always for ":latest" or an untagged image, else IfNotPresent.
	ImagePullPolicy string        `json:"imagePullPolicy,omitempty"`
	LivenessProbe   *Probe        `json:"livenessProbe,omitempty"`
	ReadinessProbe  *Probe        `json:"readinessProbe,omitempty"`
	StartupProbe    *Probe        `json:"startupProbe,omitempty"`
	VolumeMounts    []VolumeMount `json:"volumeMounts,omitempty"`
	// SecurityContext overrides the pod's securityContext field by field.
	SecurityContext *SecurityContext `json:"securityContext,omitempty"`
	// RestartPolicy is for init containers only: Always makes one a sidecar.
	RestartPolicy *string `json:"restartPolicy,omitempty"`
	// Lifecycle holds the hooks run right after the container starts and before it stops.
	Lifecycle *Lifecycle `json:"lifecycle,omitempty"`
}

// ContainerRestartAlways is the one restartPolicy a container may have: set on an init
// container, it makes it a sidecar.
const ContainerRestartAlways = "Always"

// IsSidecar reports whether c, an init container, is a sidecar (restartPolicy Always).
func (c *Container) IsSidecar() bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == ContainerRestartAlways
}

// Lifecycle is a container's hooks, as in Kubernetes.
type Lifecycle struct {
	// PostStart runs right after the container starts; the container is not running (nor
	// ready) until it ends, and a failure kills the container, which restarts with backoff.
	PostStart *LifecycleHandler `json:"postStart,omitempty"`
	// PreStop runs before the container is sent SIGTERM; it counts against the
	// termination grace period, and is cut off when that ends.
	PreStop *LifecycleHandler `json:"preStop,omitempty"`
}

// LifecycleHandler is one hook; exactly one action is set.
type LifecycleHandler struct {
	Exec    *ExecAction    `json:"exec,omitempty"`
	HTTPGet *HTTPGetAction `json:"httpGet,omitempty"`
	Sleep   *SleepAction   `json:"sleep,omitempty"`
}

// SleepAction waits (in Shoal, not in the container) for Seconds.
type SleepAction struct {
	Seconds int64 `json:"seconds"`
}

// EnvVar is one environment variable, given literally or taken from a ConfigMap, Secret or field.
type EnvVar struct {
	Name      string        `json:"name"`
	Value     string        `json:"value,omitempty"`
	ValueFrom *EnvVarSource `json:"valueFrom,omitempty"`
}

// EnvVarSource names where an EnvVar's value comes from; exactly one field is set.
type EnvVarSource struct {
	ConfigMapKeyRef *KeySelector         `json:"configMapKeyRef,omitempty"`
	SecretKeyRef    *KeySelector         `json:"secretKeyRef,omitempty"`
	FieldRef        *ObjectFieldSelector `json:"fieldRef,omitempty"`
	// ResourceFieldRef takes a container's resource request or limit.
	ResourceFieldRef *ResourceFieldSelector `json:"resourceFieldRef,omitempty"`
}

// KeySelector picks one key of a ConfigMap or Secret in the workload's namespace.
type KeySelector struct {
	Name     string `json:"name"`
	Key      string `json:"key"`
	Optional *bool  `json:"optional,omitempty"`
}

// ObjectFieldSelector takes a value from the instance itself (the Downward API). The
// paths an env var may name are EnvFieldPaths; a downwardAPI volume file, VolumeFieldPaths.
// Both accept metadata.labels['key'] and metadata.annotations['key'].
type ObjectFieldSelector struct {
	// APIVersion is the version FieldPath is read in; only v1 exists, and it is the default.
	APIVersion string `json:"apiVersion,omitempty"`
	FieldPath  string `json:"fieldPath"`
}

// ResourceFieldSelector takes a resource request or limit of a container (the Downward
// API): one of ContainerResources, in units of Divisor, rounded up.
type ResourceFieldSelector struct {
	// ContainerName defaults to the container itself in env; a volume must name one.
	ContainerName string `json:"containerName,omitempty"`
	Resource      string `json:"resource"`
	// Divisor defaults to 1.
	Divisor *Quantity `json:"divisor,omitempty"`
}

// EnvFromSource imports every key of a ConfigMap or Secret as environment variables.
type EnvFromSource struct {
	Prefix       string       `json:"prefix,omitempty"`
	ConfigMapRef *LocalObjRef `json:"configMapRef,omitempty"`
	SecretRef    *LocalObjRef `json:"secretRef,omitempty"`
}

// LocalObjRef names an object in the workload's namespace.
type LocalObjRef struct {
	Name     string `json:"name"`
	Optional *bool  `json:"optional,omitempty"`
}

// Protocols of ports.
const (
	ProtocolTCP  = "TCP"
	ProtocolUDP  = "UDP"
	ProtocolSCTP = "SCTP"
)

// ContainerPort is a port the container listens on. With host networking it is a node resource.
type ContainerPort struct {
	Name          string `json:"name,omitempty"`
	ContainerPort int32  `json:"containerPort"`
	// Protocol defaults to TCP.
	Protocol string `json:"protocol,omitempty"`
	// HostPort, when set, forwards this port of the node to the container port: a node
	// resource, as in Kubernetes. HostIP narrows it to one address of the node.
	HostPort int32  `json:"hostPort,omitempty"`
	HostIP   string `json:"hostIP,omitempty"`
}

// Resource names Shoal schedules and limits by.
const (
	ResourceCPU    = "cpu"
	ResourceMemory = "memory"
)

// Resources are the requests (what placement reserves) and limits (what the kernel enforces).
// When only limits are given, requests default to the limits, as in Kubernetes.
type Resources struct {
	Requests map[string]Quantity `json:"requests,omitempty"`
	Limits   map[string]Quantity `json:"limits,omitempty"`
}

// Probe checks a container; exactly one handler is set.
type Probe struct {
	HTTPGet   *HTTPGetAction   `json:"httpGet,omitempty"`
	TCPSocket *TCPSocketAction `json:"tcpSocket,omitempty"`
	Exec      *ExecAction      `json:"exec,omitempty"`
	GRPC      *GRPCAction      `json:"grpc,omitempty"`
	// Timings default as in Kubernetes: delay 0, timeout 1, period 10, success 1, failure 3.
	InitialDelaySeconds int32 `json:"initialDelaySeconds,omitempty"`
	TimeoutSeconds      int32 `json:"timeoutSeconds,omitempty"`
	PeriodSeconds       int32 `json:"periodSeconds,omitempty"`
	SuccessThreshold    int32 `json:"successThreshold,omitempty"`
	FailureThreshold    int32 `json:"failureThreshold,omitempty"`
}

// HTTPGetAction probes with an HTTP GET; a status in [200,400) is success.
type HTTPGetAction struct {
	Path string `json:"path,omitempty"`
	// Port is a number or the name of a container port.
	Port        IntOrString  `json:"port"`
	Host        string       `json:"host,omitempty"`
	Scheme      string       `json:"scheme,omitempty"`
	HTTPHeaders []HTTPHeader `json:"httpHeaders,omitempty"`
}

// HTTPHeader is one header sent by an HTTP probe.
type HTTPHeader struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// TCPSocketAction probes by opening a TCP connection.
type TCPSocketAction struct {
	Port IntOrString `json:"port"`
	Host string      `json:"host,omitempty"`
}

// ExecAction probes by running a command in the container; exit status 0 is success.
type ExecAction struct {
	Command []string `json:"command,omitempty"`
}

// GRPCAction probes with the standard gRPC health checking protocol
// (grpc.health.v1.Health/Check) over plaintext HTTP/2: SERVING is success.
type GRPCAction struct {
	// Port is a number only, as in Kubernetes.
	Port int32 `json:"port"`
	// Service is the name sent in the request; empty asks about the server as a whole.
	Service *string `json:"service,omitempty"`
}

// Volume is a named source of files that containers mount.
type Volume struct {
	Name      string                 `json:"name"`
	ConfigMap *ConfigMapVolumeSource `json:"configMap,omitempty"`
	Secret    *SecretVolumeSource    `json:"secret,omitempty"`
	EmptyDir  *EmptyDirVolumeSource  `json:"emptyDir,omitempty"`
	HostPath  *HostPathVolumeSource  `json:"hostPath,omitempty"`
	// DownwardAPI writes fields of the instance and resources of its containers as files.
	DownwardAPI *DownwardAPIVolumeSource `json:"downwardAPI,omitempty"`
	// Projected gathers ConfigMap, Secret and Downward API files in one directory.
	Projected *ProjectedVolumeSource `json:"projected,omitempty"`
}

// DownwardAPIVolumeSource writes one file per item. Kubernetes rewrites the label and
// annotation files when a pod's labels change; a Shoal instance's labels come from the
// commit, and changing them changes its spec hash, so a new instance gets new files.
type DownwardAPIVolumeSource struct {
	Items       []DownwardAPIVolumeFile `json:"items,omitempty"`
	DefaultMode *int32                  `json:"defaultMode,omitempty"`
}

// DownwardAPIVolumeFile is one file of a downwardAPI volume or projection: exactly one of
// FieldRef and ResourceFieldRef.
type DownwardAPIVolumeFile struct {
	Path             string                 `json:"path"`
	FieldRef         *ObjectFieldSelector   `json:"fieldRef,omitempty"`
	ResourceFieldRef *ResourceFieldSelector `json:"resourceFieldRef,omitempty"`
	Mode             *int32                 `json:"mode,omitempty"`
}

// ProjectedVolumeSource writes the files of several sources into one volume.
type ProjectedVolumeSource struct {
	Sources     []VolumeProjection `json:"sources"`
	DefaultMode *int32             `json:"defaultMode,omitempty"`
}

// VolumeProjection is one source of a projected volume: exactly one field is set.
// Shoal honours ConfigMap, Secret and DownwardAPI; ServiceAccountToken and
// ClusterTrustBundle are read so that validation can warn that their files are not written.
type VolumeProjection struct {
	ConfigMap           *ConfigMapProjection           `json:"configMap,omitempty"`
	Secret              *SecretProjection              `json:"secret,omitempty"`
	DownwardAPI         *DownwardAPIProjection         `json:"downwardAPI,omitempty"`
	ServiceAccountToken *ServiceAccountTokenProjection `json:"serviceAccountToken,omitempty"`
	ClusterTrustBundle  *ClusterTrustBundleProjection  `json:"clusterTrustBundle,omitempty"`
}

// ConfigMapProjection projects a ConfigMap's keys into a projected volume.
type ConfigMapProjection struct {
	Name     string      `json:"name"`
	Items    []KeyToPath `json:"items,omitempty"`
	Optional *bool       `json:"optional,omitempty"`
}

// SecretProjection projects a Secret's keys into a projected volume.
type SecretProjection struct {
	Name     string      `json:"name"`
	Items    []KeyToPath `json:"items,omitempty"`
	Optional *bool       `json:"optional,omitempty"`
}

// DownwardAPIProjection projects Downward API files into a projected volume.
type DownwardAPIProjection struct {
	Items []DownwardAPIVolumeFile `json:"items,omitempty"`
}

// ServiceAccountTokenProjection asks for a Kubernetes service account token. Shoal has no
// Kubernetes API to issue one for: the file is not written (validation warns).
type ServiceAccountTokenProjection struct {
	Audience          string `json:"audience,omitempty"`
	ExpirationSeconds *int64 `json:"expirationSeconds,omitempty"`
	Path              string `json:"path"`
}

// ClusterTrustBundleProjection asks for a Kubernetes ClusterTrustBundle. Shoal has no such
// objects: the file is not written (validation warns).
type ClusterTrustBundleProjection struct {
	Name          *string        `json:"name,omitempty"`
	SignerName    *string        `json:"signerName,omitempty"`
	LabelSelector *LabelSelector `json:"labelSelector,omitempty"`
	Optional      *bool          `json:"optional,omitempty"`
	Path          string         `json:"path"`
}

// ConfigMapVolumeSource projects a ConfigMap's keys as files.
type ConfigMapVolumeSource struct {
	Name        string      `json:"name"`
	Items       []KeyToPath `json:"items,omitempty"`
	DefaultMode *int32      `json:"defaultMode,omitempty"`
	Optional    *bool       `json:"optional,omitempty"`
}

// SecretVolumeSource projects a Secret's keys as files on a tmpfs.
type SecretVolumeSource struct {
	SecretName  string      `json:"secretName"`
	Items       []KeyToPath `json:"items,omitempty"`
	DefaultMode *int32      `json:"defaultMode,omitempty"`
	Optional    *bool       `json:"optional,omitempty"`
}

// EmptyDirVolumeSource is a scratch directory that lives as long as the instance.
type EmptyDirVolumeSource struct {
	// Medium "Memory" means a tmpfs.
	Medium    string    `json:"medium,omitempty"`
	SizeLimit *Quantity `json:"sizeLimit,omitempty"`
}

// KeyToPath maps one key to a relative file path inside a volume.
type KeyToPath struct {
	Key  string `json:"key"`
	Path string `json:"path"`
	Mode *int32 `json:"mode,omitempty"`
}

// VolumeMount mounts a named volume into a container.
type VolumeMount struct {
	Name      string `json:"name"`
	MountPath string `json:"mountPath"`
	ReadOnly  bool   `json:"readOnly,omitempty"`
	SubPath   string `json:"subPath,omitempty"`
}

// Affinity holds the node and inter-instance placement rules.
type Affinity struct {
	NodeAffinity    *NodeAffinity `json:"nodeAffinity,omitempty"`
	PodAffinity     *PodAffinity  `json:"podAffinity,omitempty"`
	PodAntiAffinity *PodAffinity  `json:"podAntiAffinity,omitempty"`
}

// NodeAffinity constrains (required) or steers (preferred) placement by node labels.
type NodeAffinity struct {
	Required  *NodeSelector             `json:"requiredDuringSchedulingIgnoredDuringExecution,omitempty"`
	Preferred []PreferredSchedulingTerm `json:"preferredDuringSchedulingIgnoredDuringExecution,omitempty"`
}

// NodeSelector matches a node when any one of its terms matches.
type NodeSelector struct {
	NodeSelectorTerms []NodeSelectorTerm `json:"nodeSelectorTerms"`
}

// NodeSelectorTerm matches a node when all of its expressions hold.
type NodeSelectorTerm struct {
	MatchExpressions []LabelSelectorRequirement `json:"matchExpressions,omitempty"`
}

// PreferredSchedulingTerm adds Weight (1-100) to nodes matching Preference.
type PreferredSchedulingTerm struct {
	Weight     int32            `json:"weight"`
	Preference NodeSelectorTerm `json:"preference"`
}

// PodAffinity is used for both podAffinity and podAntiAffinity.
type PodAffinity struct {
	Required  []PodAffinityTerm         `json:"requiredDuringSchedulingIgnoredDuringExecution,omitempty"`
	Preferred []WeightedPodAffinityTerm `json:"preferredDuringSchedulingIgnoredDuringExecution,omitempty"`
}

// PodAffinityTerm relates an instance to the instances matching LabelSelector within one
// topology domain (the set of nodes sharing the value of TopologyKey).
type PodAffinityTerm struct {
	LabelSelector *LabelSelector `json:"labelSelector,omitempty"`
	// Namespaces defaults to the workload's own namespace.
	Namespaces  []string `json:"namespaces,omitempty"`
	TopologyKey string   `json:"topologyKey"`
}

// WeightedPodAffinityTerm is a preferred PodAffinityTerm with a weight of 1-100.
type WeightedPodAffinityTerm struct {
	Weight          int32           `json:"weight"`
	PodAffinityTerm PodAffinityTerm `json:"podAffinityTerm"`
}

// Values of TopologySpreadConstraint.WhenUnsatisfiable.
const (
	DoNotSchedule  = "DoNotSchedule"
	ScheduleAnyway = "ScheduleAnyway"
)

// TopologySpreadConstraint limits how unevenly matching instances spread over topology domains.
type TopologySpreadConstraint struct {
	MaxSkew           int32          `json:"maxSkew"`
	TopologyKey       string         `json:"topologyKey"`
	WhenUnsatisfiable string         `json:"whenUnsatisfiable"`
	LabelSelector     *LabelSelector `json:"labelSelector,omitempty"`
}

// Service is a v1 Service: a DNS name for the ready instances its selector matches.
type Service struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta  `json:"metadata"`
	Spec     ServiceSpec `json:"spec"`
	Source   Source      `json:"-"`
}

// ClusterIPNone marks a headless Service: DNS answers with each instance's address.
const ClusterIPNone = "None"

// ServiceSpec is the desired state of a Service.
type ServiceSpec struct {
	Selector map[string]string `json:"selector,omitempty"`
	Ports    []ServicePort     `json:"ports,omitempty"`
	// ClusterIP is the Service's virtual IP when given (it must be inside the cluster's
	// service range), None for a headless Service, or empty: allocated.
	ClusterIP string `json:"clusterIP,omitempty"`
	// Type defaults to ClusterIP. NodePort also exposes every port on each node's
	// addresses; LoadBalancer is served as NodePort (with a warning); ExternalName is a
	// DNS alias (CNAME) to ExternalName, with no virtual IP, ports or endpoints.
	Type string `json:"type,omitempty"`
	// ExternalName is the DNS name an ExternalName Service is an alias for.
	ExternalName string `json:"externalName,omitempty"`
}

// ServiceTypeExternalName is the type of a Service that is only a DNS alias.
const ServiceTypeExternalName = "ExternalName"

// IsExternalName reports whether s is only a DNS alias: no virtual IP, no endpoints.
func (s *Service) IsExternalName() bool { return s.Spec.Type == ServiceTypeExternalName }

// ServicePort is one port of a Service.
type ServicePort struct {
	Name string `json:"name,omitempty"`
	Port int32  `json:"port"`
	// TargetPort is a number or a container port name; it defaults to Port.
	TargetPort *IntOrString `json:"targetPort,omitempty"`
	// Protocol defaults to TCP.
	Protocol string `json:"protocol,omitempty"`
	// NodePort is the port of every node that reaches this port, for types NodePort and
	// LoadBalancer: allocated when zero.
	NodePort int32 `json:"nodePort,omitempty"`
}

// ConfigMap is a v1 ConfigMap.
type ConfigMap struct {
	TypeMeta   `json:",inline"`
	Metadata   ObjectMeta        `json:"metadata"`
	Data       map[string]string `json:"data,omitempty"`
	BinaryData map[string][]byte `json:"binaryData,omitempty"`
	Source     Source            `json:"-"`
}

// Secret is a v1 Secret. StringData is merged into Data by defaulting, as the Kubernetes API server does.
type Secret struct {
	TypeMeta   `json:",inline"`
	Metadata   ObjectMeta        `json:"metadata"`
	Type       string            `json:"type,omitempty"`
	Data       map[string][]byte `json:"data,omitempty"`
	StringData map[string]string `json:"stringData,omitempty"`
	Source     Source            `json:"-"`
}

// Key implements Object.
func (o *Namespace) Key() Key { return Key{Kind: KindNamespace, Name: o.Metadata.Name} }

// Key implements Object.
func (o *Deployment) Key() Key {
	return Key{Kind: KindDeployment, Namespace: o.Metadata.Namespace, Name: o.Metadata.Name}
}

// Key implements Object.
func (o *Service) Key() Key {
	return Key{Kind: KindService, Namespace: o.Metadata.Namespace, Name: o.Metadata.Name}
}

// Key implements Object.
func (o *ConfigMap) Key() Key {
	return Key{Kind: KindConfigMap, Namespace: o.Metadata.Namespace, Name: o.Metadata.Name}
}

// Key implements Object.
func (o *Secret) Key() Key {
	return Key{Kind: KindSecret, Namespace: o.Metadata.Namespace, Name: o.Metadata.Name}
}

// Meta implements Object.
func (o *Namespace) Meta() *ObjectMeta { return &o.Metadata }

// Meta implements Object.
func (o *Deployment) Meta() *ObjectMeta { return &o.Metadata }

// Meta implements Object.
func (o *Service) Meta() *ObjectMeta { return &o.Metadata }

// Meta implements Object.
func (o *ConfigMap) Meta() *ObjectMeta { return &o.Metadata }

// Meta implements Object.
func (o *Secret) Meta() *ObjectMeta { return &o.Metadata }

// Origin implements Object.
func (o *Namespace) Origin() Source { return o.Source }

// Origin implements Object.
func (o *Deployment) Origin() Source { return o.Source }

// Origin implements Object.
func (o *Service) Origin() Source { return o.Source }

// Origin implements Object.
func (o *ConfigMap) Origin() Source { return o.Source }

// Origin implements Object.
func (o *Secret) Origin() Source { return o.Source }

// Set is the validated, defaulted content of one revision, each slice sorted by Key.
type Set struct {
	Namespaces  []*Namespace
	Deployments []*Deployment
	Services    []*Service
	ConfigMaps  []*ConfigMap
	Secrets     []*Secret
	// hashes is InstanceHash of each Deployment, computed once by Load; nil for a Set
	// built otherwise, whose hashes are computed on each call.
	hashes map[*Deployment]string
}

// Revision identifies the Git commit a Set was read from.
type Revision struct {
	// Commit is the full hex SHA-1 of the commit.
	Commit  string    `json:"commit"`
	Author  string    `json:"author,omitempty"`
	Message string    `json:"message,omitempty"`
	Time    time.Time `json:"time,omitempty"`
}

// Desired is what the cluster should run: the objects of one revision.
type Desired struct {
	Revision Revision
	Objects  *Set
}
