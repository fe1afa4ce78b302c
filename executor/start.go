package executor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/oci"
	"github.com/containerd/containerd/plugin"
	"github.com/containerd/containerd/runtime/v2/runc/options"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// cleanupTimeout bounds undoing a failed Start, which runs even when the caller's context
// has ended.
const cleanupTimeout = 30 * time.Second

// Start implements Runtime.
func (c *Containerd) Start(ctx context.Context, s InstanceSpec) error {
	if err := s.Validate(); err != nil {
		return err
	}
	if err := c.cfg.permissions.Check(&s); err != nil {
		return fmt.Errorf("executor: start %s: %w", s.ID, err)
	}
	ctx = c.withNS(ctx)
	existing, err := c.shoalContainers(ctx, s.ID)
	if err != nil {
		return fmt.Errorf("executor: start %s: %w", s.ID, err)
	}
	have := make(map[string]labelled, len(existing))
	for _, l := range existing {
		if h := l.labels[LabelSpecHash]; h != s.SpecHash {
			return fmt.Errorf("executor: start %s: %w (runs hash %s, asked for %s)", s.ID, ErrConflict, h, s.SpecHash)
		}
		have[l.labels[LabelContainer]] = l
	}
	var missing []*ContainerSpec
	staged := s.StageContainers()
	for i := range staged {
		cs := &staged[i]
		l, ok := have[cs.Name]
		if !ok {
			missing = append(missing, cs)
			continue
		}
		// A container without a task was left by a Start that stopped between create and
		// start; a task that exited is the agent's to restart, not ours.
		if err := c.ensureTask(ctx, l, cs); err != nil {
			return fmt.Errorf("executor: start %s: container %s: %w", s.ID, cs.Name, err)
		}
	}
	if len(missing) == 0 {
		return nil // running as asked: volumes are left alone, not rewritten under the app
	}
	// Until its containers exist, only its files and the pod network know of the
	// instance: CollectInstanceFiles and CollectNetworks must not take it for a leftover.
	defer c.starting.begin(s.ID)()
	if err := prepareVolumes(c.instanceDir(s.ID), &s); err != nil {
		return fmt.Errorf("executor: start %s: %w", s.ID, err)
	}
	if err := prepareHostPaths(c.instanceDir(s.ID), &s, c.cfg.permissions); err != nil {
		return fmt.Errorf("executor: start %s: %w", s.ID, err)
	}
	if err := applyFSGroup(c.instanceDir(s.ID), &s); err != nil {
		return fmt.Errorf("executor: start %s: fsGroup: %w", s.ID, err)
	}
	if err := writeResolvConf(c.instanceDir(s.ID), s.ResolvConf); err != nil {
		return fmt.Errorf("executor: start %s: %w", s.ID, err)
	}
	pn, err := c.attachNetwork(ctx, &s)
	if err != nil {
		c.undoStart(ctx, s.ID, nil, len(existing) == 0)
		return fmt.Errorf("executor: start %s: %w", s.ID, err)
	}
	var created []containerd.Container
	for _, cs := range missing {
		ct, err := c.createAndStart(ctx, &s, cs, pn)
		if err == nil {
			created = append(created, ct)
			// As the kubelet does, the next container starts once this one's postStart ended.
			err = c.postStart(ctx, ct, cs.PostStart, s.ID, cs.Name, pn.addr)
		}
		if err != nil {
			c.undoStart(ctx, s.ID, created, len(existing) == 0)
			return fmt.Errorf("executor: start %s: container %s: %w", s.ID, cs.Name, err)
		}
	}
	return nil
}

// undoStart removes the containers a failed Start created and, when the instance did not
// exist before, its volumes, logs and network namespace, so a failed Start leaves nothing
// behind.
func (c *Containerd) undoStart(ctx context.Context, id string, created []containerd.Container, wholeInstance bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	for _, ct := range created {
		if err := c.removeContainer(ctx, ct, 0); err != nil {
			c.cfg.logger.Warn("executor: undo start", "instance", id, "container", ct.ID(), "err", err)
		}
	}
	if wholeInstance {
		if err := c.removeInstanceFiles(id); err != nil {
			c.cfg.logger.Warn("executor: undo start", "instance", id, "err", err)
		}
		if err := c.detachNetwork(ctx, id); err != nil {
			c.cfg.logger.Warn("executor: undo start", "instance", id, "err", err)
		}
	}
}

func (c *Containerd) createAndStart(ctx context.Context, s *InstanceSpec, cs *ContainerSpec, pn podNet) (containerd.Container, error) {
	select {
	case c.starts <- struct{}{}:
		defer func() { <-c.starts }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	// The agent applies PullAlways through EnsureImage before Start; here an image already
	// present is used as it is.
	policy := PullIfNotPresent
	if cs.PullPolicy == PullNever {
		policy = PullNever
	}
	img, err := c.image(ctx, cs.Image, policy)
	if err != nil {
		return nil, err
	}
	specOpts, err := c.specOpts(ctx, img, s, cs, pn)
	if err != nil {
		return nil, err
	}
	id := RuntimeID(s.ID, cs.Name)
	ct, err := c.client.NewContainer(ctx, id,
		containerd.WithImage(img),
		containerd.WithSnapshotter(snapshotter),
		containerd.WithNewSnapshot(id, img),
		containerd.WithRuntime(plugin.RuntimeRuncV2, c.runcOptions()),
		containerd.WithNewSpec(specOpts...),
		containerd.WithContainerLabels(instanceLabels(s, cs.Name, pn.addr)),
	)
	if err != nil {
		// WithNewSnapshot made the snapshot before a later option failed (a root user
		// refused by runAsNonRoot, say): remove it, or the next attempt fails on it.
		if rerr := c.client.SnapshotService(snapshotter).Remove(ctx, id); rerr != nil && !errdefs.IsNotFound(rerr) {
			c.cfg.logger.Warn("executor: remove snapshot of a container not created", "snapshot", id, "err", rerr)
		}
		return nil, fmt.Errorf("create %s: %w", id, err)
	}
	if err := c.startTask(ctx, ct, s.ID, cs.Name); err != nil {
		c.undoStart(ctx, s.ID, []containerd.Container{ct}, false)
		return nil, err
	}
	return ct, nil
}

// specOpts builds the OCI spec of a container: the image's config, then Shoal's argv, env,
// namespaces, limits, mounts and confinement over it. pn is the instance's network (zero:
// the node's).
func (c *Containerd) specOpts(ctx context.Context, img containerd.Image, s *InstanceSpec, cs *ContainerSpec, pn podNet) ([]oci.SpecOpts, error) {
	imgSpec, err := img.Spec(ctx)
	if err != nil {
		return nil, fmt.Errorf("read config of %s: %w", cs.Image, err)
	}
	argv := Argv(cs.Command, cs.Args, imgSpec.Config.Entrypoint, imgSpec.Config.Cmd)
	if len(argv) == 0 {
		return nil, fmt.Errorf("%w: neither the manifest nor image %s gives a command", ErrInvalidSpec, cs.Image)
	}
	mounts, binds := ociMounts(c.instanceDir(s.ID), s, cs)
	env := make([]string, len(cs.Env))
	for i, e := range cs.Env {
		env[i] = e.Name + "=" + e.Value
	}
	hooks, err := hookAnnotations(cs)
	if err != nil {
		return nil, err
	}
	opts := []oci.SpecOpts{
		oci.WithImageConfig(img),
		oci.WithProcessArgs(argv...),
		oci.WithEnv(env),
		oci.WithAnnotations(hooks),
	}
	opts = append(opts, c.networkOpts(s, pn)...)
	opts = append(opts,
		c.resolvConf(s),
		oci.WithMounts(mounts),
		withSubPathBinds(binds),
	)
	if cs.WorkingDir != "" {
		opts = append(opts, oci.WithProcessCwd(cs.WorkingDir))
	}
	if cs.MemoryLimitBytes > 0 {
		opts = append(opts, oci.WithMemoryLimit(uint64(cs.MemoryLimitBytes)))
		if swapAccounting() {
			// Memory plus swap equal to the limit: no swap, so the limit is an OOM kill.
			opts = append(opts, oci.WithMemorySwap(cs.MemoryLimitBytes))
		}
	}
	if cs.CPUQuotaMicros > 0 {
		opts = append(opts, oci.WithCPUCFS(cs.CPUQuotaMicros, cs.CPUPeriodMicros))
	}
	if cs.CPUShares > 0 {
		opts = append(opts, oci.WithCPUShares(cs.CPUShares))
	}
	security, err := c.securityOpts(imgSpec.Config.User, s, cs)
	if err != nil {
		return nil, err
	}
	return append(opts, security...), nil
}

// networkNamespace is the node's network namespace: the host's, or WithNetNS's.
func (c *Containerd) networkNamespace() oci.SpecOpts {
	if c.cfg.netnsPath == "" {
		return oci.WithHostNamespace(specs.NetworkNamespace)
	}
	return oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: c.cfg.netnsPath})
}

// resolvConf gives the container the instance's resolv.conf, or the host's when the
// instance has none.
func (c *Containerd) resolvConf(s *InstanceSpec) oci.SpecOpts {
	if len(s.ResolvConf) == 0 {
		return oci.WithHostResolvconf
	}
	return oci.WithMounts([]specs.Mount{{
		Destination: "/etc/resolv.conf",
		Type:        "bind",
		Source:      resolvConfPath(c.instanceDir(s.ID)),
		Options:     []string{"rbind", "ro", "nosuid", "nodev", "noexec"},
	}})
}

// runcOptions points runc at the runtime's own state directory.
func (c *Containerd) runcOptions() *options.Options {
	return &options.Options{Root: c.cfg.runcRoot}
}

// withRuncRoot passes the runc options with the task too: the shim reads them from the
// task request, falling back to runc's shared default root without them.
func (c *Containerd) withRuncRoot(_ context.Context, _ *containerd.Client, ti *containerd.TaskInfo) error {
	ti.Options = c.runcOptions()
	return nil
}

// ensureTask starts a task for a container that has none, and runs its postStart hook.
func (c *Containerd) ensureTask(ctx context.Context, l labelled, cs *ContainerSpec) error {
	_, err := l.container.Task(ctx, nil)
	if !errdefs.IsNotFound(err) {
		return err
	}
	st := instanceFromLabels(l.labels)
	if err := c.startTask(ctx, l.container, st.ID, cs.Name); err != nil {
		return err
	}
	return c.postStart(ctx, l.container, cs.PostStart, st.ID, cs.Name, st.Addr)
}

// startTask creates and starts a container's task with stdout and stderr appended to its
// log file by the shim, so output keeps flowing while no agent runs.
func (c *Containerd) startTask(ctx context.Context, ct containerd.Container, id, name string) error {
	// The subPath binds are made again at every start: the volume may have changed since.
	if err := c.bindSubPaths(ctx, ct, id, name); err != nil {
		return fmt.Errorf("start %s: %w", ct.ID(), err)
	}
	logPath := c.logPath(id, name)
	if err := os.MkdirAll(filepath.Dir(logPath), 0o700); err != nil {
		return err
	}
	task, err := ct.NewTask(ctx, cio.LogFile(logPath), c.withRuncRoot)
	if err != nil {
		return fmt.Errorf("create task %s: %w", ct.ID(), err)
	}
	if err := task.Start(ctx); err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if _, derr := task.Delete(cctx, containerd.WithProcessKill); derr != nil {
			c.cfg.logger.Warn("executor: delete task that did not start", "container", ct.ID(), "err", derr)
		}
		return fmt.Errorf("start task %s: %w", ct.ID(), err)
	}
	return nil
}

// swapAccounting reports whether the kernel can limit memory plus swap (cgroup v1 with
// swap accounting, or cgroup v2). Without it, setting a swap limit makes runc fail.
func swapAccounting() bool {
	for _, p := range []string{"/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes", "/sys/fs/cgroup/cgroup.controllers"} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}
