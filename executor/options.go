package executor

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"time"

	"github.com/containerd/containerd/identifiers"
)

const (
	// snapshotter unpacks images and holds container root filesystems; overlayfs is about
	// twice as fast as native.
	snapshotter = "overlayfs"
	// dialTimeout bounds connecting to containerd in NewContainerd.
	dialTimeout = 10 * time.Second
)

// Option configures a Containerd runtime.
type Option func(*config)

// config is every setting of a Containerd runtime; defaultConfig holds the defaults.
type config struct {
	// socket is containerd's gRPC socket.
	socket string
	// namespace is the containerd namespace Shoal's containers live in.
	namespace string
	// runcRoot is runc's state directory. It must be private to this containerd: runc's
	// default (/run/containerd/runc) is shared by every containerd on the machine.
	runcRoot string
	// stateDir holds instance volumes and logs.
	stateDir string
	// netnsPath is the network namespace containers join; empty means the host's.
	netnsPath string
	// plainHTTP lists registries (host or host:port) spoken to over plain HTTP, besides
	// loopback ones, which always are.
	plainHTTP []string
	// dockerConfig is a Docker-style config.json with registry credentials; empty means none.
	dockerConfig string
	// logMaxBytes is the size over which a container log is rotated.
	logMaxBytes int64
	// logCheckEvery is how often log sizes are checked.
	logCheckEvery time.Duration
	// maxParallelStarts caps concurrent container create+start calls; containerd on two
	// cores does about 20 starts a second whatever the concurrency, so more only queues there.
	maxParallelStarts int
	// permissions is what instances may ask for beyond the default sandbox.
	permissions Permissions
	// podNetwork gives instances without hostNetwork namespaces of their own; nil: every
	// instance uses the node's network.
	podNetwork PodNetwork
	// postStartTimeout bounds a postStart hook (see hooks.go).
	postStartTimeout time.Duration
	logger           *slog.Logger
}

func defaultConfig() config {
	return config{
		socket:            "/run/containerd/containerd.sock",
		namespace:         "shoal",
		runcRoot:          "/run/shoal/runc",
		stateDir:          "/var/lib/shoal/executor",
		logMaxBytes:       10 << 20,
		logCheckEvery:     time.Second,
		maxParallelStarts: runtime.NumCPU(),
		postStartTimeout:  defaultPostStartTimeout,
		logger:            slog.Default(),
	}
}

func (c *config) validate() error {
	var errs []error
	if c.socket == "" {
		errs = append(errs, errors.New("socket path is empty"))
	}
	if err := identifiers.Validate(c.namespace); err != nil {
		errs = append(errs, fmt.Errorf("namespace: %w", err))
	}
	for name, p := range map[string]string{"runc root": c.runcRoot, "state dir": c.stateDir} {
		if !filepath.IsAbs(p) {
			errs = append(errs, fmt.Errorf("%s %q is not an absolute path", name, p))
		}
	}
	if c.netnsPath != "" && !filepath.IsAbs(c.netnsPath) {
		errs = append(errs, fmt.Errorf("netns path %q is not absolute", c.netnsPath))
	}
	if c.logMaxBytes <= 0 || c.logCheckEvery <= 0 || c.maxParallelStarts <= 0 || c.postStartTimeout <= 0 {
		errs = append(errs, errors.New("log cap, log check interval, parallel starts and postStart timeout must be positive"))
	}
	if err := c.permissions.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.logger == nil {
		errs = append(errs, errors.New("logger is nil"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("executor: config: %w", err)
	}
	return nil
}

// WithSocket sets containerd's gRPC socket (default /run/containerd/containerd.sock).
func WithSocket(path string) Option { return func(c *config) { c.socket = path } }

// WithNamespace sets the containerd namespace (default "shoal").
func WithNamespace(ns string) Option { return func(c *config) { c.namespace = ns } }

// WithRuncRoot sets runc's state directory (default /run/shoal/runc). Give each containerd
// its own.
func WithRuncRoot(dir string) Option { return func(c *config) { c.runcRoot = dir } }

// WithStateDir sets where volumes and logs live (default /var/lib/shoal/executor).
func WithStateDir(dir string) Option { return func(c *config) { c.stateDir = dir } }

// WithNetNS makes containers that use the node's network (all of them without
// WithPodNetwork, those with hostNetwork with it) join the network namespace at path
// instead of the host's.
func WithNetNS(path string) Option { return func(c *config) { c.netnsPath = path } }

// WithPodNetwork gives every instance that does not ask for hostNetwork a network
// namespace of its own from pn, with its own address, hostname and /etc/hosts; its
// containers share them, and its containers' hostPorts are forwarded to it. Instances with
// hostNetwork keep the node's network (WithNetNS's). Without this option every instance
// uses the node's network.
func WithPodNetwork(pn PodNetwork) Option { return func(c *config) { c.podNetwork = pn } }

// WithPlainHTTPRegistries lists registries (host or host:port) to reach over plain HTTP.
// Loopback registries always are.
func WithPlainHTTPRegistries(hosts ...string) Option {
	return func(c *config) { c.plainHTTP = append(c.plainHTTP, hosts...) }
}

// WithDockerConfig reads registry credentials from a Docker-style config.json ("auths").
func WithDockerConfig(path string) Option { return func(c *config) { c.dockerConfig = path } }

// WithLogMaxBytes sets the size over which a container log is rotated (default 10 MiB).
func WithLogMaxBytes(n int64) Option { return func(c *config) { c.logMaxBytes = n } }

// WithLogCheckInterval sets how often log sizes are checked (default 1s).
func WithLogCheckInterval(d time.Duration) Option { return func(c *config) { c.logCheckEvery = d } }

// WithMaxParallelStarts caps concurrent container starts (default: the number of CPUs).
func WithMaxParallelStarts(n int) Option { return func(c *config) { c.maxParallelStarts = n } }

// WithLogger sets the logger for what the runtime does on its own (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithPermissions sets what instances may ask for beyond the default sandbox
// (privileged, host namespaces and paths, Localhost seccomp profiles); the default
// allows none of it.
func WithPermissions(p Permissions) Option {
	return func(c *config) {
		c.permissions = p
		c.permissions.HostPaths = make([]string, len(p.HostPaths))
		for i, dir := range p.HostPaths {
			c.permissions.HostPaths[i] = filepath.Clean(dir)
		}
	}
}
