package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"runtime"
	"time"

	"github.com/shoalhq/shoal/executor"
	"github.com/shoalhq/shoal/network"
	"github.com/shoalhq/shoal/planner"
)

// Config is everything the loop needs besides its collaborators. DefaultConfig fills it.
type Config struct {
	// NodeName names this node in placements, labels and status.
	NodeName string
	// Labels are this node's labels; kubernetes.io/hostname defaults to NodeName.
	Labels map[string]string
	// Allocatable is what instances on this node may reserve by their requests.
	Allocatable planner.Resources
	// EphemeralStorageBytes is the node's local disk for instances, reported to a
	// resourceFieldRef on an ephemeral-storage limit a container does not set; 0: unknown.
	// Shoal neither reserves nor limits it.
	EphemeralStorageBytes int64
	// MaxInstances is how many instances this node may run (the kubelet's maxPods). It
	// travels in the node's gossip metadata, so every node plans with each node's own value.
	MaxInstances int
	// Permissions is what this node lets instances ask for beyond the default sandbox: the
	// executor's, which refuses the rest at start. The agent publishes them in gossip so
	// that the plan places an instance only where it is allowed, and stops an instance it
	// adopts or would restart that they no longer allow.
	Permissions executor.Permissions
	// NodeAddr is the address this node's instances are reached at (host networking:
	// the node's own address); it goes into gossip and DNS answers.
	NodeAddr string
	// APIAddr and DNSAddr are this node's HTTP API and DNS server, published for tools.
	APIAddr, DNSAddr string
	// ResyncInterval is how often the agent re-reads the runtime and reconciles even when
	// nothing happened, to catch what an event missed.
	ResyncInterval time.Duration
	// CrashBackoff is the schedule of restarts of a crashing container. By default
	// (ImmediateFirst) the first crash in a row restarts at once, as the kubelet does, and
	// the next ones wait Base, 2·Base, … Cap.
	CrashBackoff executor.Backoff
	// StartBackoff paces new attempts to start an instance whose start failed (image pull,
	// bad config): Base, 2·Base, … Cap.
	StartBackoff executor.Backoff
	// MaxParallelActions caps runtime calls in flight (starts, stops, restarts).
	MaxParallelActions int
	// SurviveAfter is how long the agent must run with a revision, unless it converges on
	// it sooner, before its RevisionMarker trusts it: a revision that takes the agent down
	// before then is not applied again at start-up.
	SurviveAfter time.Duration
	// Reports says the node sends commit statuses (a Reporter is set): of each commit it
	// is the reporter of.
	Reports bool
	// Network is the cluster's pod network; its zero value is none.
	Network NetworkConfig
	// Logger receives structured logs.
	Logger *slog.Logger
}

// NetworkConfig is the cluster's pod network: every daemon of a cluster must be given the
// same. Its zero value is no pod network: every instance runs on its node's network, as
// with hostNetwork, and its container ports are node resources.
type NetworkConfig struct {
	// ClusterCIDR is the range each node's pod subnet is carved from; invalid: no pod network.
	ClusterCIDR netip.Prefix
	// NodeSubnetBits is the prefix length of each node's subnet (24: a /24 per node).
	NodeSubnetBits int
	// ServiceCIDR is the range Services' virtual IPs come from.
	ServiceCIDR netip.Prefix
	// NodePortMin and NodePortMax bound the node ports Services get.
	NodePortMin, NodePortMax uint16
	// Claim is the subnet this node claimed in an earlier run (zero: none), which it keeps
	// unless an older claim of another node wins it.
	Claim network.SubnetClaim
	// EndpointDrain is how long a ready instance that is to stop keeps running, already out
	// of every Service's endpoints, before it gets SIGTERM: the time every node's proxy
	// needs to stop sending it new connections (Kubernetes users add a preStop sleep for it).
	EndpointDrain time.Duration
}

// DefaultNetwork is the pod network of a cluster that states no ranges: Kubernetes'
// usual ones (flannel's 10.244.0.0/16 with a /24 per node, kubeadm's 10.96.0.0/12 for
// Services, node ports 30000–32767).
func DefaultNetwork() NetworkConfig {
	return NetworkConfig{
		ClusterCIDR: netip.MustParsePrefix("10.244.0.0/16"), NodeSubnetBits: 24,
		ServiceCIDR: netip.MustParsePrefix("10.96.0.0/12"),
		NodePortMin: network.DefaultNodePortMin, NodePortMax: network.DefaultNodePortMax,
		EndpointDrain: 2 * time.Second,
	}
}

// validate reports what is wrong with the ranges of a pod network.
func (n NetworkConfig) validate() error {
	if !n.On() {
		return nil
	}
	var errs []error
	if _, err := network.NewPodRange(n.ClusterCIDR, n.NodeSubnetBits); err != nil {
		errs = append(errs, err)
	}
	if err := network.ValidateServiceRange(n.ServiceCIDR); err != nil {
		errs = append(errs, err)
	}
	if err := network.ValidateNodePortRange(n.NodePortMin, n.NodePortMax); err != nil {
		errs = append(errs, err)
	}
	if n.ServiceCIDR.Overlaps(n.ClusterCIDR) {
		errs = append(errs, fmt.Errorf("service range %s overlaps the pod range %s", n.ServiceCIDR, n.ClusterCIDR))
	}
	return errors.Join(errs...)
}

// On reports whether instances get networks of their own.
func (n NetworkConfig) On() bool { return n.ClusterCIDR.IsValid() }

// WellKnownLabels are the labels the kubelet gives every node that manifests select on
// (`nodeSelector: {kubernetes.io/os: linux}` is common): its hostname, OS and architecture.
// The older beta. forms of the last two are not published (gossip metadata is small):
// every node derives them from these when it plans (see plannerLabels).
func WellKnownLabels(node string) map[string]string {
	return map[string]string{
		planner.LabelHostname: node,
		labelOS:               runtime.GOOS,
		labelArch:             runtime.GOARCH,
	}
}

const (
	labelOS   = "kubernetes.io/os"
	labelArch = "kubernetes.io/arch"
)

// plannerLabels are a node's labels as the planner sees them: with the beta. forms of its
// OS and architecture when it states the GA ones, as the kubelet sets both.
func plannerLabels(labels map[string]string) map[string]string {
	osName, hasOS := labels[labelOS]
	arch, hasArch := labels[labelArch]
	_, hasBetaOS := labels["beta."+labelOS]
	_, hasBetaArch := labels["beta."+labelArch]
	if (!hasOS || hasBetaOS) && (!hasArch || hasBetaArch) {
		return labels
	}
	out := maps.Clone(labels)
	if hasOS && !hasBetaOS {
		out["beta."+labelOS] = osName
	}
	if hasArch && !hasBetaArch {
		out["beta."+labelArch] = arch
	}
	return out
}

// DefaultConfig returns a Config for node name with the Kubernetes schedules: crash
// restarts at once, then 10s doubling to 5m, reset after 10m of running; and a 30s resync.
func DefaultConfig(node string) Config {
	return Config{
		NodeName:           node,
		Labels:             WellKnownLabels(node),
		NodeAddr:           "127.0.0.1",
		ResyncInterval:     30 * time.Second,
		CrashBackoff:       executor.DefaultBackoff(),
		StartBackoff:       executor.Backoff{Base: 2 * time.Second, Cap: 5 * time.Minute, ResetAfter: time.Hour},
		MaxParallelActions: 4,
		MaxInstances:       planner.DefaultMaxInstances,
		SurviveAfter:       time.Minute,
		Logger:             slog.Default(),
	}
}

// Validate reports every problem of the configuration at once.
func (c *Config) Validate() error {
	var errs []error
	if c.NodeName == "" {
		errs = append(errs, errors.New("node name is empty"))
	}
	if c.ResyncInterval <= 0 {
		errs = append(errs, fmt.Errorf("resync interval %v must be positive", c.ResyncInterval))
	}
	if err := c.CrashBackoff.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("crash %w", err))
	}
	if err := c.StartBackoff.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("start %w", err))
	}
	if c.MaxParallelActions <= 0 {
		errs = append(errs, fmt.Errorf("max parallel actions %d must be positive", c.MaxParallelActions))
	}
	if c.SurviveAfter <= 0 {
		errs = append(errs, fmt.Errorf("survive-after %v must be positive", c.SurviveAfter))
	}
	if c.MaxInstances <= 0 {
		errs = append(errs, fmt.Errorf("max instances per node %d must be positive", c.MaxInstances))
	}
	if err := c.Permissions.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Allocatable.MilliCPU < 0 || c.Allocatable.MemoryBytes < 0 {
		errs = append(errs, errors.New("allocatable CPU and memory must not be negative"))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("logger is nil"))
	}
	if err := c.Network.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("agent: config: %w", err)
	}
	return nil
}
