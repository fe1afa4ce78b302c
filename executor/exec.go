package executor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/errdefs"
)

// execKillWait bounds waiting for an exec'd process to die after SIGKILL.
const execKillWait = 10 * time.Second

// Exec implements Runtime.
func (c *Containerd) Exec(ctx context.Context, id, container string, argv []string) (int, error) {
	code, err := c.exec(c.withNS(ctx), id, container, argv)
	if err != nil {
		return -1, fmt.Errorf("executor: exec %q in %s/%s: %w", argv, id, container, err)
	}
	return code, nil
}

func (c *Containerd) exec(ctx context.Context, id, container string, argv []string) (int, error) {
	if len(argv) == 0 {
		return -1, fmt.Errorf("%w: empty command", ErrInvalidSpec)
	}
	l, err := c.findContainer(ctx, id, container)
	if err != nil {
		return -1, err
	}
	task, err := l.container.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return -1, ErrNotRunning
	}
	if err != nil {
		return -1, fmt.Errorf("load task: %w", err)
	}
	if st, err := task.Status(ctx); err != nil {
		return -1, fmt.Errorf("task status: %w", err)
	} else if st.Status != containerd.Running {
		return -1, fmt.Errorf("%w (%s)", ErrNotRunning, st.Status)
	}
	spec, err := l.container.Spec(ctx)
	if err != nil {
		return -1, fmt.Errorf("read spec: %w", err)
	}
	proc := *spec.Process // the container's user, environment, working directory and limits
	proc.Args = argv
	proc.Terminal = false
	execID, err := newExecID()
	if err != nil {
		return -1, err
	}
	p, err := task.Exec(ctx, execID, &proc, cio.NullIO)
	if err != nil {
		return -1, fmt.Errorf("create process: %w", err)
	}
	// The process now exists in the shim: it is deleted whatever happens, after ctx too.
	cleanupCtx, cancelCleanup := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancelCleanup()
	defer func() {
		if _, err := p.Delete(cleanupCtx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			c.cfg.logger.Warn("executor: delete exec'd process", "instance", id, "container", container, "err", err)
		}
	}()
	// Waiting must outlive ctx: after ctx ends the process is killed and its end awaited.
	waitCtx, stopWait := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWait()
	exited, err := p.Wait(waitCtx)
	if err != nil {
		return -1, fmt.Errorf("wait process: %w", err)
	}
	if err := p.Start(ctx); err != nil {
		return -1, fmt.Errorf("start process: %w", err)
	}
	select {
	case st := <-exited:
		code, _, err := st.Result()
		if err != nil {
			return -1, fmt.Errorf("wait process: %w", err)
		}
		return int(code), nil
	case <-ctx.Done():
	}
	if err := p.Kill(cleanupCtx, syscall.SIGKILL); err != nil && !errdefs.IsNotFound(err) {
		return -1, errors.Join(ctx.Err(), fmt.Errorf("kill process: %w", err))
	}
	select {
	case <-exited:
	case <-time.After(execKillWait):
		c.cfg.logger.Warn("executor: exec'd process outlived SIGKILL", "instance", id, "container", container, "exec", execID)
	}
	return -1, ctx.Err()
}

// newExecID names an exec'd process uniquely within its task, across agents.
func newExecID() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("exec id: %w", err)
	}
	return "shoal-exec-" + hex.EncodeToString(b), nil
}

// findContainer returns the named container of an instance, or ErrNotFound.
func (c *Containerd) findContainer(ctx context.Context, id, container string) (labelled, error) {
	cts, err := c.shoalContainers(ctx, id)
	if err != nil {
		return labelled{}, err
	}
	for _, l := range cts {
		if l.labels[LabelContainer] == container {
			return l, nil
		}
	}
	return labelled{}, ErrNotFound
}
