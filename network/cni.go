package network

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/version"
)

// A PodNetwork gives each instance a network namespace of its own with an address from
// the node's pod subnet, on a bridge in the node's namespace, through the CNI reference
// plugins driven by libcni: loopback, bridge (the bridge holds the gateway, the first
// address of the subnet), host-local IPAM and, for instances with host ports, portmap.
//
// The bridge lives in the network namespace the CNI plugins run in: the daemon's own, or
// PodNetworkConfig.NodeNetNS. Masquerade to outside the cluster is not done here (the
// bridge plugin's ipMasq is off): the Service proxy does it in nftables.
//
// Everything it makes is under StateDir, so that a new PodNetwork on the same StateDir
// (after a crash or a restart of the daemon) finds every attachment again (Attachments)
// and can remove those that belong to nothing (Collect):
//
//	netns/<id>                 the instance's namespace, bind-mounted
//	attachments/<id>.json      what Attach used (configuration, port mappings) and gave (address)
//	cache/results/<net>-<id>-eth0   libcni's cache of the plugins' result
//	ipam/<net>/<address>       host-local's reservations
//
// Nothing is written to /var/lib/cni or /var/run/netns. Calls are safe from several
// goroutines; calls for one ID are serialized.
type PodNetwork struct {
	cfg PodNetworkConfig
	cni *libcni.CNIConfig

	mu     sync.Mutex
	subnet netip.Prefix // zero until SetSubnet
	mtu    int          // cfg.MTU until SetMTU

	// locks serialize the calls for one ID (striped: an ID always takes the same one).
	locks [64]sync.Mutex
}

// PodNetworkConfig configures a PodNetwork. Zero fields take the defaults in
// DefaultPodNetworkConfig; StateDir has none.
type PodNetworkConfig struct {
	// PluginDirs are searched in order for the CNI plugins (default /usr/lib/cni, where
	// Debian's containernetworking-plugins puts them, then /opt/cni/bin).
	PluginDirs []string
	// StateDir holds the namespaces' bind mounts, libcni's cache and the IPAM
	// reservations. It must be absolute, on a local filesystem, and this PodNetwork's alone.
	StateDir string
	// Bridge is the name of the bridge in the node's namespace (default "shoal0").
	Bridge string
	// NetworkName is the CNI network name; it names the cache and IPAM entries (default "shoal").
	NetworkName string
	// MTU of the bridge and the instances' interfaces; 0 leaves the plugins' default (1500).
	// SetMTU changes it.
	MTU int
	// NodeNetNS is the path of the network namespace that holds the bridge and the host
	// ends of the instances' interfaces; empty means the namespace the daemon runs in (the
	// way a node runs). The plugins are started inside it, so a daemon in one namespace
	// can serve another (tests do: nothing then touches the daemon's own namespace).
	NodeNetNS string
	// Logger receives what the plugins print on stderr (at debug level) and what Collect
	// removes (default slog.Default()).
	Logger *slog.Logger
}

// Attachment is one instance's network namespace and address.
type Attachment struct {
	ID string
	// Netns is the path of the instance's network namespace, bind-mounted under StateDir:
	// what its containers join.
	Netns string
	// Addr is the instance's address, from the pod subnet in force when it was attached.
	Addr netip.Addr
}

// PortMapping forwards a port of the node to a port of an instance (a Kubernetes
// hostPort), through the portmap plugin.
type PortMapping struct {
	HostPort, ContainerPort uint16
	// Protocol is "tcp" (the default when empty), "udp" or "sctp", in any case.
	Protocol string
	// HostIP, when valid, is the only node address the port is opened on; otherwise every
	// address of the node.
	HostIP netip.Addr
}

// Errors callers branch on.
var (
	// ErrNoSubnet is an Attach before the node's pod subnet is known (SetSubnet).
	ErrNoSubnet = errors.New("network: the node has no pod subnet yet")
	// ErrInvalidID is an instance ID that is not a DNS label: IDs become file names.
	ErrInvalidID = errors.New("network: invalid instance ID")
)

// Plugin names and the parts of the CNI configuration that never change.
const (
	pluginLoopback  = "loopback"
	pluginBridge    = "bridge"
	pluginHostLocal = "host-local"
	pluginPortmap   = "portmap"
	// cniVersion is the newest CNI version Debian bookworm's plugins (1.1.1) speak.
	cniVersion = "1.0.0"
	// ifName is the instance's interface inside its namespace.
	ifName = "eth0"
	// maxIDLen is the DNS label limit, which instance IDs keep (planner.InstanceID).
	maxIDLen = 63
	// maxIfNameLen is the kernel's limit on interface names (IFNAMSIZ - 1).
	maxIfNameLen = 15
	// cleanupTimeout bounds undoing a failed Attach after the caller's context ended.
	cleanupTimeout = 30 * time.Second
)

// requiredPlugins must all be found in PluginDirs.
var requiredPlugins = []string{pluginLoopback, pluginBridge, pluginHostLocal, pluginPortmap}

// DefaultPodNetworkConfig is the configuration every zero field of a PodNetworkConfig
// takes; StateDir is left empty, for the caller to set.
func DefaultPodNetworkConfig() PodNetworkConfig {
	return PodNetworkConfig{
		PluginDirs:  []string{"/usr/lib/cni", "/opt/cni/bin"},
		Bridge:      "shoal0",
		NetworkName: "shoal",
		Logger:      slog.Default(),
	}
}

// withDefaults fills the zero fields of c from DefaultPodNetworkConfig.
func (c PodNetworkConfig) withDefaults() PodNetworkConfig {
	d := DefaultPodNetworkConfig()
	if len(c.PluginDirs) == 0 {
		c.PluginDirs = d.PluginDirs
	}
	if c.Bridge == "" {
		c.Bridge = d.Bridge
	}
	if c.NetworkName == "" {
		c.NetworkName = d.NetworkName
	}
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	return c
}

// Validate checks a configuration after defaults: absolute paths, names the kernel and
// libcni accept, an MTU an interface can have.
func (c PodNetworkConfig) Validate() error {
	var errs []error
	for _, p := range append([]string{c.StateDir}, c.PluginDirs...) {
		if !filepath.IsAbs(p) {
			errs = append(errs, fmt.Errorf("path %q is not absolute", p))
		}
	}
	if c.NodeNetNS != "" && !filepath.IsAbs(c.NodeNetNS) {
		errs = append(errs, fmt.Errorf("node netns %q is not absolute", c.NodeNetNS))
	}
	if !isName(c.Bridge, maxIfNameLen) {
		errs = append(errs, fmt.Errorf("bridge name %q is not an interface name (at most %d of [A-Za-z0-9_.-])", c.Bridge, maxIfNameLen))
	}
	if !isName(c.NetworkName, 64) {
		errs = append(errs, fmt.Errorf("network name %q is not a name (at most 64 of [A-Za-z0-9_.-])", c.NetworkName))
	}
	if err := checkMTU(c.MTU); err != nil {
		errs = append(errs, err)
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("logger is nil"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("network: pod network config: %w", err)
	}
	return nil
}

// NewPodNetwork checks the configuration, finds the plugins and checks that each speaks
// the CNI version used, and creates StateDir. It changes no network: the bridge appears
// with the first Attach.
func NewPodNetwork(cfg PodNetworkConfig) (*PodNetwork, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	raw := &invoke.RawExec{Stderr: stderrLog{cfg.Logger}}
	var exec invoke.Exec = &invoke.DefaultExec{RawExec: raw, PluginDecoder: version.PluginDecoder{}}
	if cfg.NodeNetNS != "" {
		exec = &nodeExec{DefaultExec: invoke.DefaultExec{RawExec: raw}, netns: cfg.NodeNetNS}
	}
	n := &PodNetwork{
		cfg: cfg,
		mtu: cfg.MTU,
		cni: libcni.NewCNIConfigWithCacheDir(cfg.PluginDirs, filepath.Join(cfg.StateDir, "cache"), exec),
	}
	for _, p := range requiredPlugins {
		if _, err := invoke.FindInPath(p, cfg.PluginDirs); err != nil {
			return nil, fmt.Errorf("network: CNI plugin %s not found in %v (install containernetworking-plugins): %w", p, cfg.PluginDirs, err)
		}
	}
	// Any subnet will do to check that every plugin of the list speaks its version.
	list, err := n.confList(placeholderSubnet, cfg.MTU, true)
	if err != nil {
		return nil, err
	}
	if _, err := n.cni.ValidateNetworkList(context.Background(), list); err != nil {
		return nil, fmt.Errorf("network: CNI plugins in %v: %w", cfg.PluginDirs, err)
	}
	for _, dir := range []string{n.netnsDir(), n.recordDir()} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("network: %w", err)
		}
	}
	return n, nil
}

// SetSubnet sets the node's pod subnet, from which Attach gives addresses; its first
// address is the gateway, on the bridge. It may change (the node lost its claim): later
// attachments take addresses from the new subnet, while existing ones keep theirs until
// they are detached, but lose their gateway, which moves to the new subnet (the bridge
// holds one IPv4 address); the instances should be replaced.
func (n *PodNetwork) SetSubnet(p netip.Prefix) error {
	if !p.IsValid() || p != p.Masked() {
		return fmt.Errorf("network: pod subnet %v is not a network prefix", p)
	}
	if p.Bits() > p.Addr().BitLen()-2 {
		return fmt.Errorf("network: pod subnet %v has no room for a gateway and an instance", p)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.subnet = p
	return nil
}

// SetMTU sets the MTU of the instances' interfaces (and of the bridge, when the first
// Attach creates it) for later attachments; 0 is the plugins' default (1500). A VXLAN
// overlay needs 50 bytes less than the node's uplink.
func (n *PodNetwork) SetMTU(mtu int) error {
	if err := checkMTU(mtu); err != nil {
		return fmt.Errorf("network: %w", err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.mtu = mtu
	return nil
}

func checkMTU(mtu int) error {
	if mtu != 0 && (mtu < 576 || mtu > 65535) {
		return fmt.Errorf("MTU %d is outside 576..65535", mtu)
	}
	return nil
}

// settings returns the pod subnet and the MTU, read together.
func (n *PodNetwork) settings() (netip.Prefix, int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.subnet, n.mtu
}

// Subnet returns the pod subnet SetSubnet set, zero before.
func (n *PodNetwork) Subnet() netip.Prefix {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.subnet
}

// lock serializes the calls for one ID; the caller calls the function it returns.
func (n *PodNetwork) lock(id string) func() {
	h := fnv.New32a()
	h.Write([]byte(id))
	m := &n.locks[h.Sum32()%uint32(len(n.locks))]
	m.Lock()
	return m.Unlock
}

// CheckID returns an error wrapping ErrInvalidID unless id is a DNS label: 1 to 63
// lowercase letters, digits and '-', starting and ending with a letter or digit, as
// planner.InstanceID makes them.
func CheckID(id string) error {
	if len(id) == 0 || len(id) > maxIDLen || id[0] == '-' || id[len(id)-1] == '-' {
		return fmt.Errorf("%w %q: not a DNS label", ErrInvalidID, id)
	}
	for _, c := range []byte(id) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("%w %q: not a DNS label", ErrInvalidID, id)
		}
	}
	return nil
}

// isName reports whether s is 1 to max characters of [A-Za-z0-9_.-] and not "." or "..".
func isName(s string, max int) bool {
	if s == "" || len(s) > max || s == "." || s == ".." {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// Paths under StateDir.
func (n *PodNetwork) netnsDir() string           { return filepath.Join(n.cfg.StateDir, "netns") }
func (n *PodNetwork) netnsPath(id string) string { return filepath.Join(n.netnsDir(), id) }
func (n *PodNetwork) recordDir() string          { return filepath.Join(n.cfg.StateDir, "attachments") }
func (n *PodNetwork) ipamDir() string            { return filepath.Join(n.cfg.StateDir, "ipam") }

// nodeExec runs the plugins inside the node's network namespace: a process started by a
// thread that entered a namespace starts in it.
type nodeExec struct {
	invoke.DefaultExec
	netns string
}

func (e *nodeExec) ExecPlugin(ctx context.Context, path string, stdin []byte, environ []string) ([]byte, error) {
	var out []byte
	err := InNetNS(e.netns, func() error {
		var err error
		out, err = e.RawExec.ExecPlugin(ctx, path, stdin, environ)
		return err
	})
	return out, err
}

// stderrLog passes what plugins print on stderr to the logger.
type stderrLog struct{ l *slog.Logger }

func (w stderrLog) Write(p []byte) (int, error) {
	w.l.Debug("network: CNI plugin stderr", "text", string(p))
	return len(p), nil
}
