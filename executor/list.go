package executor

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	tasktypes "github.com/containerd/containerd/api/types/task"
)

// List implements Runtime. It reads containerd twice whatever the number of containers:
// once for the labelled containers, once for every task of the namespace.
func (c *Containerd) List(ctx context.Context) ([]InstanceState, error) {
	ctx = c.withNS(ctx)
	cts, err := c.shoalContainers(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("executor: list: %w", err)
	}
	resp, err := c.client.TaskService().List(ctx, &tasksapi.ListTasksRequest{})
	if err != nil {
		return nil, fmt.Errorf("executor: list tasks: %w", err)
	}
	tasks := make(map[string]*tasktypes.Process, len(resp.Tasks))
	for _, t := range resp.Tasks {
		tasks[t.ID] = t // containerd leaves ContainerID empty here; a task's ID is its container's
	}
	var out []InstanceState
	for _, l := range cts {
		id := l.labels[LabelInstance]
		if len(out) == 0 || out[len(out)-1].ID != id {
			out = append(out, instanceFromLabels(l.labels))
		}
		cs := c.containerState(l, tasks[l.container.ID()])
		out[len(out)-1].Containers = append(out[len(out)-1].Containers, cs)
	}
	return out, nil
}

// containerState describes a container from its labels and its task (nil when it has none).
func (c *Containerd) containerState(l labelled, t *tasktypes.Process) ContainerState {
	cs := ContainerState{
		Name:      l.labels[LabelContainer],
		Image:     l.image,
		RuntimeID: l.container.ID(),
		Status:    StatusNoTask,
		Restarts:  restartsFromLabels(l.labels),
	}
	cs.Init, cs.Sidecar = roleFromLabels(l.labels)
	if t == nil {
		return cs
	}
	cs.PID = t.Pid
	switch t.Status {
	case tasktypes.Status_CREATED:
		cs.Status = StatusCreated
	case tasktypes.Status_RUNNING:
		cs.Status = StatusRunning
	case tasktypes.Status_PAUSED, tasktypes.Status_PAUSING:
		cs.Status = StatusPaused
	case tasktypes.Status_STOPPED:
		cs.Status = StatusExited
		cs.ExitCode = int(t.ExitStatus)
		cs.ExitedAt = t.ExitedAt.AsTime()
		cs.OOMKilled = c.oomKilled(l.container.ID())
	}
	return cs
}

// oomKilled reports whether the kernel OOM-killed a process of the container's task. The
// count lives in the task's memory cgroup until the task is deleted, so this survives an
// agent restart, unlike the /tasks/oom event. An unreadable count is logged and read as no.
func (c *Containerd) oomKilled(containerID string) bool {
	// The cgroup path containerd's default spec gives a container: /<namespace>/<id>.
	n, err := oomKillCount(cgroupRoot, filepath.Join("/", c.cfg.namespace, containerID))
	if err != nil {
		c.cfg.logger.Warn("executor: read OOM kill count", "container", containerID, "err", err)
	}
	return n > 0
}

const cgroupRoot = "/sys/fs/cgroup"

// oomKillCount reads the oom_kill counter of a cgroup: memory.oom_control in the cgroup v1
// memory hierarchy, else memory.events in the unified one. A cgroup that no longer exists
// counts 0.
func oomKillCount(root, cgroupPath string) (int, error) {
	for _, p := range []string{
		filepath.Join(root, "memory", cgroupPath, "memory.oom_control"),
		filepath.Join(root, cgroupPath, "memory.events"),
	} {
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, err
		}
		return parseOOMKill(b)
	}
	return 0, nil
}

// parseOOMKill finds the "oom_kill N" line of a cgroup memory file.
func parseOOMKill(b []byte) (int, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, value, ok := bytes.Cut(sc.Bytes(), []byte{' '})
		if ok && string(key) == "oom_kill" {
			return strconv.Atoi(string(bytes.TrimSpace(value)))
		}
	}
	return 0, nil
}
