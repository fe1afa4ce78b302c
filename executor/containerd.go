package executor

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
)

// Containerd is the Runtime on a real containerd. Create it with NewContainerd and Close
// it when done; it holds a client connection and a goroutine that rotates logs.
//
// It keeps no record of instances in memory: every call reads containerd (by label), so
// several Containerd values on one daemon, or one started after another stopped, agree.
type Containerd struct {
	client *containerd.Client
	cfg    config
	// starts is a semaphore capping concurrent container starts.
	starts chan struct{}
	// starting knows the instances between their pod network Attach and their containers.
	starting startTracker
	// closed ends when Close is called: it stops log rotation and every event stream,
	// which the WaitGroup tracks.
	closed     context.Context
	close      context.CancelFunc
	goroutines sync.WaitGroup
}

var _ Runtime = (*Containerd)(nil)

// NewContainerd connects to containerd and starts rotating logs. It fails when containerd
// cannot be reached within the dial timeout or an option is invalid.
func NewContainerd(ctx context.Context, opts ...Option) (*Containerd, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	for _, dir := range []string{cfg.stateDir, cfg.runcRoot} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("executor: %w", err)
		}
	}
	// containerd.New ignores ctx; a dead daemon would block it for the dial timeout.
	client, err := containerd.New(cfg.socket,
		containerd.WithDefaultNamespace(cfg.namespace),
		containerd.WithTimeout(dialTimeout))
	if err != nil {
		return nil, fmt.Errorf("executor: connect to containerd at %s: %w", cfg.socket, err)
	}
	if _, err := client.Version(namespaces.WithNamespace(ctx, cfg.namespace)); err != nil {
		client.Close()
		return nil, fmt.Errorf("executor: containerd at %s: %w", cfg.socket, err)
	}
	closed, closeFn := context.WithCancel(context.Background())
	c := &Containerd{
		client: client,
		cfg:    cfg,
		starts: make(chan struct{}, cfg.maxParallelStarts),
		closed: closed,
		close:  closeFn,
	}
	c.goroutines.Add(1)
	go c.rotateLogsEvery()
	return c, nil
}

// Close stops log rotation and every event stream (their channels close), then closes the
// connection. Containers keep running: a later Containerd adopts them.
func (c *Containerd) Close() error {
	c.close()
	c.goroutines.Wait()
	return c.client.Close()
}

// Client returns the containerd client, for tests and benchmarks that compare against it.
func (c *Containerd) Client() *containerd.Client { return c.client }

// Namespace returns the containerd namespace the runtime works in.
func (c *Containerd) Namespace() string { return c.cfg.namespace }

func (c *Containerd) rotateLogsEvery() {
	defer c.goroutines.Done()
	tick := time.NewTicker(c.cfg.logCheckEvery)
	defer tick.Stop()
	for {
		select {
		case <-c.closed.Done():
			return
		case <-tick.C:
			if err := rotateLogs(c.cfg.stateDir, c.cfg.logMaxBytes); err != nil {
				c.cfg.logger.Warn("executor: rotate logs", "err", err)
			}
		}
	}
}

// withNS puts the runtime's containerd namespace on ctx.
func (c *Containerd) withNS(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, c.cfg.namespace)
}

// labelled is a Shoal container as read from containerd, with its labels.
type labelled struct {
	container containerd.Container
	labels    map[string]string
	image     string
}

// shoalContainers lists the containers carrying LabelInstance (equal to instanceID when
// that is not empty), sorted by instance then container name.
func (c *Containerd) shoalContainers(ctx context.Context, instanceID string) ([]labelled, error) {
	filter := fmt.Sprintf("labels.%q", LabelInstance)
	if instanceID != "" {
		filter = fmt.Sprintf("labels.%q==%q", LabelInstance, instanceID)
	}
	cs, err := c.client.Containers(ctx, filter)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := make([]labelled, 0, len(cs))
	for _, ct := range cs {
		info, err := ct.Info(ctx, containerd.WithoutRefreshedMetadata)
		if err != nil {
			return nil, fmt.Errorf("container %s: %w", ct.ID(), err)
		}
		out = append(out, labelled{container: ct, labels: info.Labels, image: info.Image})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].labels, out[j].labels
		if a[LabelInstance] != b[LabelInstance] {
			return a[LabelInstance] < b[LabelInstance]
		}
		return a[LabelContainer] < b[LabelContainer]
	})
	return out, nil
}

// instanceDir holds an instance's volumes.
func (c *Containerd) instanceDir(id string) string {
	return filepath.Join(c.cfg.stateDir, "instances", id)
}

// logPath is where a container's stdout and stderr go.
func (c *Containerd) logPath(id, container string) string {
	return LogPath(c.cfg.stateDir, id, container)
}

// Logs implements Runtime.
func (c *Containerd) Logs(ctx context.Context, id, container string, opts LogOptions, w io.Writer) error {
	if _, err := c.findContainer(c.withNS(ctx), id, container); err != nil {
		return fmt.Errorf("executor: logs %s/%s: %w", id, container, err)
	}
	return CopyLog(ctx, c.logPath(id, container), opts, w)
}
