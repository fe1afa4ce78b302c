package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"

	containerd "github.com/containerd/containerd"
)

// Lifecycle hooks, as the kubelet runs them:
//
//   - postStart runs right after a container's task starts (at Start, Restart, and when
//     Start finds a container without a task). Start and Restart return only after it
//     ends, so the agent does not count the container as running, nor start its probes,
//     before that; an instance's next container starts after it, as in Kubernetes. When
//     it fails the container is killed and the call fails with ErrHookFailed: Start
//     removes what it created (the agent retries with backoff), Restart leaves the
//     container stopped (the agent restarts it again with backoff).
//   - preStop runs before SIGTERM, when Stop or Restart stops a container whose task
//     runs, and only with a grace period above zero. The grace period counts from the
//     hook's start: a hook still running when it ends is abandoned (an exec'd process
//     killed), and the container then gets SIGTERM with what is left of the grace period,
//     but at least minGraceAfterPreStop, as the kubelet gives. A failed preStop is logged
//     and the stop goes on.
//
// Stop and Restart find a container by its labels alone, so the hooks travel with the
// container, as annotations of its OCI spec (annotationPostStart, annotationPreStop),
// and an agent that restarts runs the hooks of the containers it adopted.

// Annotations of a container's OCI spec holding its hooks as JSON.
const (
	annotationPostStart = "io.shoal.hook.postStart"
	annotationPreStop   = "io.shoal.hook.preStop"
)

// minGraceAfterPreStop is the least time a container gets between SIGTERM and SIGKILL
// after a preStop hook, however long the hook took (the kubelet's minimum, 2 s).
const minGraceAfterPreStop = 2 * time.Second

// defaultPostStartTimeout bounds a postStart hook. Kubernetes sets no bound; a hook that
// never ended would hold one of the agent's workers for ever. A hook cut off fails.
const defaultPostStartTimeout = 2 * time.Minute

// ErrHookFailed is a postStart hook that failed (FailedPostStartHook in Kubernetes); the
// container was killed. The error also says why the hook failed.
var ErrHookFailed = errors.New("postStart hook failed")

// Hook is a container's postStart or preStop hook, resolved: exactly one of HTTPGet, Exec
// and Sleep is set.
type Hook struct {
	// HTTPGet sends a GET to the instance's address (or Host); only a failure to get an
	// answer fails the hook: the kubelet does not look at the status either.
	HTTPGet *HTTPProbe `json:"httpGet,omitempty"`
	// Exec runs a command in the container, as an exec probe does: exit code 0 is success.
	Exec *ExecProbe `json:"exec,omitempty"`
	// Sleep waits this long, in the runtime, not in the container.
	Sleep *time.Duration `json:"sleep,omitempty"`
}

// validate checks what runHook relies on.
func (h *Hook) validate() error {
	if h == nil {
		return nil
	}
	n := 0
	for _, set := range []bool{h.HTTPGet != nil, h.Exec != nil, h.Sleep != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("has %d actions, want exactly one of httpGet, exec and sleep", n)
	}
	switch {
	case h.HTTPGet != nil:
		if h.HTTPGet.Scheme != "http" && h.HTTPGet.Scheme != "https" {
			return fmt.Errorf("scheme %q is not http or https", h.HTTPGet.Scheme)
		}
		return validPort(h.HTTPGet.Port)
	case h.Exec != nil && len(h.Exec.Command) == 0:
		return errors.New("exec command is empty")
	case h.Sleep != nil && *h.Sleep < 0:
		return fmt.Errorf("sleep %v is negative", *h.Sleep)
	}
	return nil
}

// hookAnnotations are the annotations that keep a container's hooks with it.
func hookAnnotations(cs *ContainerSpec) (map[string]string, error) {
	out := map[string]string{}
	for key, h := range map[string]*Hook{annotationPostStart: cs.PostStart, annotationPreStop: cs.PreStop} {
		if h == nil {
			continue
		}
		b, err := json.Marshal(h)
		if err != nil {
			return nil, fmt.Errorf("hook %s: %w", key, err)
		}
		out[key] = string(b)
	}
	return out, nil
}

// containerHook reads a container's hook from its spec's annotation key: nil when it has
// none.
func containerHook(ctx context.Context, ct containerd.Container, key string) (*Hook, error) {
	s, err := ct.Spec(ctx)
	if err != nil {
		return nil, fmt.Errorf("read spec: %w", err)
	}
	raw, ok := s.Annotations[key]
	if !ok {
		return nil, nil
	}
	var h Hook
	if err := json.Unmarshal([]byte(raw), &h); err != nil {
		return nil, fmt.Errorf("hook %s: %w", key, err)
	}
	if err := h.validate(); err != nil {
		return nil, fmt.Errorf("hook %s: %w", key, err)
	}
	return &h, nil
}

// runHook runs h in (or, for httpGet, against) the container of instance id; addr is the
// instance's address, invalid on the node's network (then loopback).
func (c *Containerd) runHook(ctx context.Context, h *Hook, id, container string, addr netip.Addr) error {
	switch {
	case h.Exec != nil:
		return checkExec(ctx, h.Exec, c, id, container)
	case h.HTTPGet != nil:
		host := "127.0.0.1"
		if addr.IsValid() {
			host = addr.String()
		}
		return checkHTTPAnswers(ctx, h.HTTPGet, host)
	case h.Sleep != nil:
		t := time.NewTimer(*h.Sleep)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return fmt.Errorf("%w: hook without an action", ErrInvalidSpec)
}

// postStart runs a container's postStart hook, if any, right after its task started. On
// failure it kills the task and returns an error wrapping ErrHookFailed.
func (c *Containerd) postStart(ctx context.Context, ct containerd.Container, h *Hook, id, container string, addr netip.Addr) error {
	if h == nil {
		return nil
	}
	hctx, cancel := context.WithTimeout(ctx, c.cfg.postStartTimeout)
	err := c.runHook(hctx, h, id, container, addr)
	cancel()
	if err == nil {
		return nil
	}
	c.cfg.logger.Warn("executor: postStart hook failed; killing the container", "instance", id, "container", container, "err", err)
	if task, terr := ct.Task(ctx, nil); terr == nil {
		if kerr := stopTask(ctx, task, 0); kerr != nil {
			err = errors.Join(err, fmt.Errorf("kill: %w", kerr))
		}
	}
	return fmt.Errorf("%w: %w", ErrHookFailed, err)
}

// postStartOf runs the postStart hook kept with a container whose task has just started.
func (c *Containerd) postStartOf(ctx context.Context, l labelled) error {
	h, err := containerHook(ctx, l.container, annotationPostStart)
	if err != nil {
		return err
	}
	st := instanceFromLabels(l.labels)
	return c.postStart(ctx, l.container, h, st.ID, l.labels[LabelContainer], st.Addr)
}

// preStop runs the preStop hook of a container whose task runs, for at most grace from
// now, and returns the grace left for SIGTERM: grace itself when no hook ran, else what
// is left of it but at least minGraceAfterPreStop. With no grace, no hook runs.
func (c *Containerd) preStop(ctx context.Context, ct containerd.Container, task containerd.Task, grace time.Duration) time.Duration {
	if grace <= 0 {
		return grace
	}
	began := time.Now()
	h, err := containerHook(ctx, ct, annotationPreStop)
	if err != nil {
		c.cfg.logger.Warn("executor: preStop hook not run", "container", ct.ID(), "err", err)
		return grace
	}
	if h == nil {
		return grace
	}
	if st, err := task.Status(ctx); err != nil || st.Status != containerd.Running {
		return grace
	}
	labels, err := ct.Labels(ctx)
	if err != nil {
		c.cfg.logger.Warn("executor: preStop hook not run", "container", ct.ID(), "err", err)
		return grace
	}
	st := instanceFromLabels(labels)
	hctx, cancel := context.WithTimeout(ctx, grace)
	err = c.runHook(hctx, h, st.ID, labels[LabelContainer], st.Addr)
	cancel()
	if err != nil {
		c.cfg.logger.Warn("executor: preStop hook failed", "instance", st.ID, "container", labels[LabelContainer], "err", err)
	}
	return max(grace-time.Since(began), minGraceAfterPreStop)
}
