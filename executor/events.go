package executor

import (
	"context"
	"errors"
	"fmt"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/events"
	"github.com/containerd/typeurl/v2"
)

// Re-subscription delays after the event stream breaks (containerd restarting).
const (
	resubscribeMin = 100 * time.Millisecond
	resubscribeMax = 2 * time.Second
	eventBuffer    = 64
)

// Events implements Runtime. The stream survives containerd restarts: it subscribes again
// and reports the exits and deletions it missed meanwhile. Exits that happened before the
// first subscription are not reported; List shows them. Close ends every stream.
func (c *Containerd) Events(ctx context.Context) <-chan Event {
	out := make(chan Event, eventBuffer)
	w := &eventWatcher{c: c, out: out, known: map[string]*watchedContainer{}, foreign: map[string]bool{}}
	ctx, cancel := context.WithCancel(c.withNS(ctx))
	stopOnClose := context.AfterFunc(c.closed, cancel) // Close ends every stream
	c.goroutines.Add(1)
	go func() { // owned by ctx and Close
		defer c.goroutines.Done()
		defer cancel()
		defer stopOnClose()
		w.run(ctx)
	}()
	return out
}

// eventWatcher turns containerd's events into Events for one Events call. Its goroutine
// owns every field.
type eventWatcher struct {
	c   *Containerd
	out chan<- Event
	// known are Shoal's containers by containerd ID; foreign are the others seen, so they
	// are looked up once.
	known   map[string]*watchedContainer
	foreign map[string]bool
}

// watchedContainer is what the watcher remembers of one container to name it in events
// and to report each OOM and exit once.
type watchedContainer struct {
	instance, container string
	oom                 bool // an OOM event came since the task started
	exitPID             uint32
	exitAt              time.Time
}

func (w *eventWatcher) run(ctx context.Context) {
	defer close(w.out)
	synced := false
	delay := resubscribeMin
	for {
		subCtx, cancel := context.WithCancel(ctx)
		envs, errs := w.c.client.Subscribe(subCtx, w.filters()...)
		began := time.Now()
		// Subscribe first, then read the current state: nothing falls between the two.
		err := w.sync(subCtx, synced)
		if err == nil {
			synced = true
			err = w.consume(subCtx, envs, errs)
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
		if time.Since(began) > resubscribeMax {
			delay = resubscribeMin // the stream had been fine for a while
		}
		w.c.cfg.logger.Warn("executor: event stream broken, subscribing again", "err", err, "in", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, resubscribeMax)
	}
}

func (w *eventWatcher) filters() []string {
	topics := []string{"/tasks/exit", "/tasks/oom", "/tasks/start", "/containers/create", "/containers/delete"}
	out := make([]string, len(topics))
	for i, t := range topics {
		// client.Subscribe sees every namespace; other daemons' namespaces are not ours.
		out[i] = fmt.Sprintf("namespace==%q,topic==%q", w.c.cfg.namespace, t)
	}
	return out
}

// consume handles events until the stream breaks or ctx ends.
func (w *eventWatcher) consume(ctx context.Context, envs <-chan *events.Envelope, errs <-chan error) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errs:
			if err == nil {
				err = errors.New("event stream closed")
			}
			return err
		case env := <-envs:
			if env.Namespace != w.c.cfg.namespace {
				continue
			}
			ev, err := typeurl.UnmarshalAny(env.Event)
			if err != nil {
				w.c.cfg.logger.Warn("executor: undecodable event", "topic", env.Topic, "err", err)
				continue
			}
			w.handle(ctx, ev)
		}
	}
}

func (w *eventWatcher) handle(ctx context.Context, ev any) {
	switch e := ev.(type) {
	case *apievents.ContainerCreate:
		w.lookup(ctx, e.ID)
	case *apievents.TaskStart:
		if k := w.lookup(ctx, e.ContainerID); k != nil {
			k.oom = false
		}
	case *apievents.TaskOOM:
		k := w.lookup(ctx, e.ContainerID)
		if k == nil || k.oom {
			return
		}
		k.oom = true
		w.emit(ctx, Event{Kind: EventOOM, InstanceID: k.instance, Container: k.container, Time: time.Now()})
	case *apievents.TaskExit:
		if e.ID != e.ContainerID {
			return // an exec'd process, not the container's own
		}
		if k := w.lookup(ctx, e.ContainerID); k != nil {
			w.exited(ctx, e.ContainerID, k, e.Pid, int(e.ExitStatus), e.ExitedAt.AsTime())
		}
	case *apievents.ContainerDelete:
		delete(w.foreign, e.ID)
		if k, ok := w.known[e.ID]; ok {
			delete(w.known, e.ID)
			w.emit(ctx, Event{Kind: EventDeleted, InstanceID: k.instance, Container: k.container, Time: time.Now()})
		}
	}
}

// exited reports an exit once. OOMKilled is true when an OOM event came or the cgroup
// counted an OOM kill; an exit code of 137 alone proves nothing (a plain SIGKILL gives it).
func (w *eventWatcher) exited(ctx context.Context, containerID string, k *watchedContainer, pid uint32, code int, at time.Time) {
	if k.exitPID == pid && k.exitAt.Equal(at) {
		return
	}
	k.exitPID, k.exitAt = pid, at
	oom := k.oom || w.c.oomKilled(containerID)
	k.oom = false
	w.emit(ctx, Event{Kind: EventExit, InstanceID: k.instance, Container: k.container, PID: pid, ExitCode: code, OOMKilled: oom, Time: at})
}

// lookup returns the watched container with this ID, reading its labels from containerd
// the first time; nil for a container that is not Shoal's or no longer exists.
func (w *eventWatcher) lookup(ctx context.Context, id string) *watchedContainer {
	if k, ok := w.known[id]; ok {
		return k
	}
	if w.foreign[id] {
		return nil
	}
	ct, err := w.c.client.LoadContainer(ctx, id)
	if err != nil {
		if !errdefs.IsNotFound(err) {
			w.c.cfg.logger.Warn("executor: look up container of event", "container", id, "err", err)
		}
		return nil
	}
	labels, err := ct.Labels(ctx)
	if err != nil {
		return nil
	}
	if labels[LabelInstance] == "" {
		w.foreign[id] = true
		return nil
	}
	k := &watchedContainer{instance: labels[LabelInstance], container: labels[LabelContainer]}
	w.known[id] = k
	return k
}

// sync learns the current containers. After a broken stream (reportMissed) it also reports
// the exits and deletions that happened while it was down.
func (w *eventWatcher) sync(ctx context.Context, reportMissed bool) error {
	cts, err := w.c.shoalContainers(ctx, "")
	if err != nil {
		return err
	}
	resp, err := w.c.client.TaskService().List(ctx, &tasksapi.ListTasksRequest{})
	if err != nil {
		return fmt.Errorf("list tasks: %w", err)
	}
	tasks := make(map[string]*tasktypes.Process, len(resp.Tasks))
	for _, t := range resp.Tasks {
		tasks[t.ID] = t // containerd leaves ContainerID empty here; a task's ID is its container's
	}
	present := make(map[string]bool, len(cts))
	for _, l := range cts {
		id := l.container.ID()
		present[id] = true
		k, ok := w.known[id]
		if !ok {
			k = &watchedContainer{instance: l.labels[LabelInstance], container: l.labels[LabelContainer]}
			w.known[id] = k
		}
		t := tasks[id]
		if t == nil || t.Status != tasktypes.Status_STOPPED {
			continue
		}
		if reportMissed {
			w.exited(ctx, id, k, t.Pid, int(t.ExitStatus), t.ExitedAt.AsTime())
		} else {
			k.exitPID, k.exitAt = t.Pid, t.ExitedAt.AsTime()
		}
	}
	for id, k := range w.known {
		if !present[id] {
			delete(w.known, id)
			if reportMissed {
				w.emit(ctx, Event{Kind: EventDeleted, InstanceID: k.instance, Container: k.container, Time: time.Now()})
			}
		}
	}
	return nil
}

func (w *eventWatcher) emit(ctx context.Context, ev Event) {
	select {
	case w.out <- ev:
	case <-ctx.Done():
	}
}
