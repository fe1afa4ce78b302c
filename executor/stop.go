package executor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
)

// Stop implements Runtime.
func (c *Containerd) Stop(ctx context.Context, id string, grace time.Duration) error {
	ctx = c.withNS(ctx)
	cts, err := c.shoalContainers(ctx, id)
	if err != nil {
		return fmt.Errorf("executor: stop %s: %w", id, err)
	}
	// Containers of a wave stop together, and the waves share one grace period: the
	// instance takes one grace period, not one per container.
	deadline := time.Now().Add(grace)
	for n, wave := range stopWaves(cts) {
		waveGrace := grace
		if n > 0 {
			waveGrace = remainingGrace(grace, deadline)
		}
		errs := make([]error, len(wave))
		var wg sync.WaitGroup
		for i, l := range wave {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = c.removeContainer(ctx, l.container, waveGrace)
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("executor: stop %s: %w", id, err)
		}
	}
	if err := c.removeInstanceFiles(id); err != nil {
		return fmt.Errorf("executor: stop %s: %w", id, err)
	}
	// Last: an instance whose namespace is gone cannot be started again in place.
	if err := c.detachNetwork(ctx, id); err != nil {
		return fmt.Errorf("executor: stop %s: %w", id, err)
	}
	return nil
}

// stopWaves orders an instance's containers for Stop, as the kubelet does: first every
// container but the sidecars, together; then the sidecars one at a time, the last
// started first, so that they serve the app containers until those have exited.
func stopWaves(cts []labelled) [][]labelled {
	var first, sidecars []labelled
	for _, l := range cts {
		if _, sidecar := roleFromLabels(l.labels); sidecar {
			sidecars = append(sidecars, l)
		} else {
			first = append(first, l)
		}
	}
	waves := [][]labelled{first}
	slices.SortStableFunc(sidecars, func(a, b labelled) int {
		na, _ := roleFromLabels(a.labels)
		nb, _ := roleFromLabels(b.labels)
		return cmp.Compare(nb, na)
	})
	for _, l := range sidecars {
		waves = append(waves, []labelled{l})
	}
	return waves
}

// remainingGrace is what is left for a sidecar of a grace period that ends at deadline:
// at least minSidecarGrace when the period was not 0, so that a sidecar reached late
// still gets SIGTERM before SIGKILL.
func remainingGrace(grace time.Duration, deadline time.Time) time.Duration {
	if grace <= 0 {
		return 0
	}
	return max(time.Until(deadline), minSidecarGrace)
}

// minSidecarGrace is the least time a sidecar has between SIGTERM and SIGKILL when the
// containers before it took the whole grace period (Kubernetes gives 2 s).
const minSidecarGrace = 2 * time.Second

// removeInstanceFiles removes an instance's volumes and logs.
func (c *Containerd) removeInstanceFiles(id string) error {
	return errors.Join(
		removeInstanceDir(c.instanceDir(id)),
		os.RemoveAll(LogDir(c.cfg.stateDir, id)),
	)
}

// removeContainer stops a container's task (its preStop hook, then stopTask), deletes the task, then the
// container with its snapshot. Parts already gone are skipped.
func (c *Containerd) removeContainer(ctx context.Context, ct containerd.Container, grace time.Duration) error {
	task, err := ct.Task(ctx, nil)
	switch {
	case errdefs.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("container %s: load task: %w", ct.ID(), err)
	default:
		if err := stopTask(ctx, task, c.preStop(ctx, ct, task, grace)); err != nil {
			return fmt.Errorf("container %s: %w", ct.ID(), err)
		}
		if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("container %s: delete task: %w", ct.ID(), err)
		}
	}
	if err := ct.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("container %s: delete: %w", ct.ID(), err)
	}
	return nil
}

// stopTask sends SIGTERM and, if the task still runs after grace, SIGKILL to all its
// processes; it returns once the task has exited. It waits on the task before the first
// signal, or an exit right after the signal could be missed.
func stopTask(ctx context.Context, task containerd.Task, grace time.Duration) error {
	st, err := task.Status(ctx)
	if err != nil {
		return fmt.Errorf("task status: %w", err)
	}
	if st.Status == containerd.Stopped {
		return nil
	}
	waitCtx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the Wait call if we return before the task exits
	exited, err := task.Wait(waitCtx)
	if err != nil {
		return fmt.Errorf("wait task: %w", err)
	}
	if grace > 0 {
		if err := task.Kill(ctx, syscall.SIGTERM); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("SIGTERM: %w", err)
		}
		timer := time.NewTimer(grace)
		defer timer.Stop()
		select {
		case <-exited:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
	}
	if err := task.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("SIGKILL: %w", err)
	}
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Restart implements Runtime.
func (c *Containerd) Restart(ctx context.Context, id, container string) error {
	ctx = c.withNS(ctx)
	l, err := c.findContainer(ctx, id, container)
	if err == nil {
		err = c.restart(ctx, l)
	}
	if err != nil {
		return fmt.Errorf("executor: restart %s/%s: %w", id, container, err)
	}
	return nil
}

func (c *Containerd) restart(ctx context.Context, l labelled) error {
	task, err := l.container.Task(ctx, nil)
	switch {
	case errdefs.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("load task: %w", err)
	default:
		grace := instanceFromLabels(l.labels).GracePeriod
		if err := stopTask(ctx, task, c.preStop(ctx, l.container, task, grace)); err != nil {
			return err
		}
		if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("delete task: %w", err)
		}
	}
	restarts := strconv.Itoa(restartsFromLabels(l.labels) + 1)
	if _, err := l.container.SetLabels(ctx, map[string]string{LabelRestarts: restarts}); err != nil {
		return fmt.Errorf("count restart: %w", err)
	}
	if err := c.startTask(ctx, l.container, l.labels[LabelInstance], l.labels[LabelContainer]); err != nil {
		return err
	}
	return c.postStartOf(ctx, l)
}
