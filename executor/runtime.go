package executor

import (
	"context"
	"errors"
	"github.com/containerd/errdefs"
	"io"
	"net/netip"
	"time"
)

// Runtime runs instances on this node. Every call takes its context first and none keeps
// it. Calls are safe to make from several goroutines, and every mutating call is
// idempotent, so the agent can repeat an action after a crash without checking first.
type Runtime interface {
	// EnsureImage makes ref present according to policy: Always fetches it, IfNotPresent
	// fetches it when missing, Never only checks. A failure wraps ErrImagePull and its cause.
	EnsureImage(ctx context.Context, ref string, policy PullPolicy) error
	// Start creates and starts every container of the instance (of its Stage, when set:
	// the agent starts init containers one at a time). Containers that exist with the same
	// SpecHash are left as they are, exited or not; one with another hash is ErrConflict.
	// A missing image is fetched unless the container's policy is Never. Start either
	// leaves every container started or removes what it created. Each container's
	// postStart hook runs before the next container starts and before Start returns; one
	// that fails fails Start with ErrHookFailed.
	Start(ctx context.Context, spec InstanceSpec) error
	// Stop runs the preStop hook of every running container that has one, sends SIGTERM,
	// and SIGKILL to what still runs once grace has passed since the hook began (at once
	// when grace <= 0, without hooks; see hooks.go); sidecars are stopped so after the
	// other containers have exited, one at a time in reverse order, within the same grace.
	// It then deletes the containers, their snapshots,
	// volumes and logs. Stopping an instance that does not exist is not an error.
	Stop(ctx context.Context, id string, grace time.Duration) error
	// Restart runs a container of the instance again in place, with a new task and the same
	// log file: a running one is first stopped as Stop stops it (preStop hook, SIGTERM,
	// grace period), and its postStart hook runs after the start (ErrHookFailed leaves it
	// stopped). The agent
	// decides when (see Backoff). ErrNotFound if the instance or container does not exist.
	Restart(ctx context.Context, id, container string) error
	// List returns every instance on this node, Shoal-labelled containers only, sorted
	// by ID, so that a restarted agent adopts what runs without restarting it.
	List(ctx context.Context) ([]InstanceState, error)
	// Events streams task exits, OOM kills and container deletions of Shoal's containers,
	// without repeats, until ctx ends; then the channel is closed. Each call gets its own stream.
	Events(ctx context.Context) <-chan Event
	// Exec runs argv in a running container of the instance, as the container's process
	// runs (same environment, user and working directory), waits for it and returns its
	// exit code; its output is discarded. When ctx ends first, the process is killed and
	// the error wraps ctx's. ErrNotFound if the instance or container does not exist,
	// ErrNotRunning if its process does not run; a command that cannot be started (no
	// such file) is an error, not an exit code.
	Exec(ctx context.Context, id, container string, argv []string) (exitCode int, err error)
	// Logs writes the last opts.Tail lines of a container's log to w and, with opts.Follow,
	// what it writes next, until ctx ends.
	Logs(ctx context.Context, id, container string, opts LogOptions, w io.Writer) error
}

// Errors callers branch on. Runtimes wrap them with context; test with errors.Is.
var (
	// ErrImagePull is an image that could not be fetched (ImagePullBackOff in Kubernetes).
	// The error also wraps the cause.
	ErrImagePull = errors.New("image pull failed")
	// ErrNotFound is an instance or container that does not exist on this node.
	ErrNotFound = errors.New("not found")
	// ErrNotRunning is an Exec in a container whose process does not run (it exited, or
	// has not started).
	ErrNotRunning = errors.New("container not running")
	// ErrConflict is a Start for an ID that runs with another spec hash.
	ErrConflict = errors.New("instance exists with another spec")
	// ErrInvalidSpec is an InstanceSpec that no runtime can run.
	ErrInvalidSpec = errors.New("invalid instance spec")
	// ErrConfig is a pod template whose references (ConfigMap, Secret, key, field) cannot be
	// resolved (CreateContainerConfigError in Kubernetes).
	ErrConfig = errors.New("instance config cannot be resolved")
)

// Status is the state of a container's task.
type Status string

// Task statuses.
const (
	// StatusCreated is a container whose task exists but has not started.
	StatusCreated Status = "created"
	// StatusRunning is a container whose process runs.
	StatusRunning Status = "running"
	// StatusExited is a container whose process ended; ExitCode says how.
	StatusExited Status = "exited"
	// StatusPaused is a container whose task is frozen.
	StatusPaused Status = "paused"
	// StatusNoTask is a container without a task: it was created but never started, or its
	// task was deleted.
	StatusNoTask Status = "no-task"
)

// InstanceState is what List reports about one instance, read back from the runtime.
type InstanceState struct {
	ID          string
	Namespace   string
	Workload    string
	SpecHash    string
	Revision    string
	Node        string
	GracePeriod time.Duration
	// Addr is the instance's address in its own network namespace (WithPodNetwork),
	// invalid when it uses the node's network.
	Addr netip.Addr
	// Containers are sorted by name.
	Containers []ContainerState
}

// ContainerState is the state of one container of an instance.
type ContainerState struct {
	Name  string
	Image string
	// RuntimeID is the runtime's own name for the container (a containerd container ID).
	RuntimeID string
	Status    Status
	PID       uint32
	// ExitCode, ExitedAt and OOMKilled are set when Status is StatusExited.
	ExitCode  int
	ExitedAt  time.Time
	OOMKilled bool
	// Restarts counts Restart calls since the instance started.
	Restarts int
	// Init and Sidecar are the container's ContainerSpec fields, read back.
	Init    int
	Sidecar bool
}

// Completes reports whether the container is meant to run to completion: an init
// container that is not a sidecar.
func (c ContainerState) Completes() bool { return c.Init > 0 && !c.Sidecar }

// Running reports whether every container of the instance runs, except init containers
// that completed (exited 0).
func (s InstanceState) Running() bool {
	for _, c := range s.Containers {
		if c.Status != StatusRunning && !(c.Completes() && c.Status == StatusExited && c.ExitCode == 0) {
			return false
		}
	}
	return len(s.Containers) > 0
}

// EventKind says what happened to a container.
type EventKind string

// Event kinds.
const (
	// EventExit is a container's process that ended; ExitCode and OOMKilled say how.
	EventExit EventKind = "exit"
	// EventOOM is the kernel's OOM killer acting in a container. It comes before the exit.
	EventOOM EventKind = "oom"
	// EventDeleted is a container removed from the runtime.
	EventDeleted EventKind = "deleted"
)

// Event is something that happened to one of Shoal's containers.
type Event struct {
	Kind       EventKind
	InstanceID string
	Container  string
	PID        uint32
	ExitCode   int
	OOMKilled  bool
	Time       time.Time
}

// LogOptions select what Logs writes.
type LogOptions struct {
	// Tail is the number of last lines to write; negative means the whole log.
	Tail int
	// Follow keeps writing new lines until the context ends.
	Follow bool
}

// RuntimeUnavailable reports whether err says the runtime itself could not be reached or
// did not answer in time (containerd down, restarting or overloaded): a failure of the
// node, not of what the instance asked for.
func RuntimeUnavailable(err error) bool {
	return errdefs.IsUnavailable(err) || errdefs.IsDeadlineExceeded(err) || errors.Is(err, context.DeadlineExceeded)
}
