package executortest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/shoalhq/shoal/executor"
)

// ErrClosed is returned by a Fake after Close.
var ErrClosed = errors.New("executortest: fake runtime closed")

// FakeConfig sets up a Fake.
type FakeConfig struct {
	// StateDir receives the containers' log files, laid out as executor.LogPath says.
	StateDir string
	// Images are the references EnsureImage can "pull", and what each runs.
	Images map[string]Program
	// Permissions is what instances may ask for beyond the default sandbox, as
	// executor.WithPermissions gives a Containerd; Start refuses the rest.
	Permissions executor.Permissions
}

// Fake is an in-memory executor.Runtime. Its containers are goroutines running Programs;
// it keeps everything a containerd would (images, containers, processes, exit statuses),
// so a Reopen'd Fake adopts what another started. One goroutine owns that state; the
// methods send it work. It models processes, signals, exits, OOM kills, logs and
// commands run by Exec (the Program answers them); it does not model volumes, networking,
// resolv.conf or resource limits other than the memory limit.
type Fake struct {
	host *fakeHost
}

var _ executor.Runtime = (*Fake)(nil)

// NewFake starts a Fake. Close it when done.
func NewFake(cfg FakeConfig) *Fake {
	h := &fakeHost{
		cfg:      cfg,
		ops:      make(chan func(*fakeState)),
		quit:     make(chan struct{}),
		loopDone: make(chan struct{}),
	}
	go h.loop()
	return &Fake{host: h}
}

// Reopen returns another Fake on the same state, as a restarted agent connects to the
// same containerd.
func (f *Fake) Reopen() *Fake { return &Fake{host: f.host} }

// Close kills every process and stops the Fake and every Fake Reopen'd from it. It is
// idempotent.
func (f *Fake) Close() error {
	h := f.host
	h.closeOnce.Do(func() {
		close(h.quit)
		<-h.loopDone
		h.procs.Wait()
		h.subs.Wait()
	})
	return nil
}

// Kill sends sig to the process with pid from outside Shoal, as `kill` would.
func (f *Fake) Kill(pid uint32, sig syscall.Signal) error {
	var err error
	if derr := f.host.do(context.Background(), func(s *fakeState) {
		for _, c := range s.containers {
			if c.proc != nil && c.proc.pid == pid && c.proc.status == executor.StatusRunning {
				c.proc.signal(sig)
				return
			}
		}
		err = fmt.Errorf("kill %d: %w", pid, syscall.ESRCH)
	}); derr != nil {
		return derr
	}
	return err
}

// fakeHost is the state one or more Fakes share, and the goroutines that serve it.
type fakeHost struct {
	cfg       FakeConfig
	ops       chan func(*fakeState)
	quit      chan struct{}
	loopDone  chan struct{}
	procs     sync.WaitGroup // process goroutines
	subs      sync.WaitGroup // event subscriber goroutines
	closeOnce sync.Once
}

// fakeState is owned by the loop goroutine.
type fakeState struct {
	host       *fakeHost
	pulled     map[string]bool
	containers map[string]*fakeContainer // by runtime ID
	subs       map[*subscriber]bool
	nextPID    uint32
}

type fakeContainer struct {
	rid      string
	instance executor.InstanceState // without Containers
	spec     executor.ContainerSpec
	restarts int
	proc     *fakeProcess
}

type fakeProcess struct {
	pid       uint32
	signals   chan syscall.Signal
	execs     chan *ExecCall
	killed    chan struct{}
	exited    chan struct{} // closed once status is StatusExited
	wasKilled bool
	log       *os.File
	status    executor.Status
	exitCode  int
	exitedAt  time.Time
	oom       bool
}

func (p *fakeProcess) signal(sig syscall.Signal) {
	if sig == syscall.SIGKILL {
		if !p.wasKilled {
			p.wasKilled = true
			close(p.killed)
		}
		return
	}
	select {
	case p.signals <- sig:
	default: // a process that does not read its signals loses some, as with a real queue limit
	}
}

func (h *fakeHost) loop() {
	defer close(h.loopDone)
	s := &fakeState{host: h, pulled: map[string]bool{}, containers: map[string]*fakeContainer{}, subs: map[*subscriber]bool{}, nextPID: 1000}
	for {
		select {
		case op := <-h.ops:
			op(s)
		case <-h.quit:
			for _, c := range s.containers {
				if c.proc != nil && c.proc.status == executor.StatusRunning {
					c.proc.signal(syscall.SIGKILL)
				}
			}
			return
		}
	}
}

// do runs op on the loop goroutine and waits for it.
func (h *fakeHost) do(ctx context.Context, op func(*fakeState)) error {
	finished := make(chan struct{})
	select {
	case h.ops <- func(s *fakeState) { op(s); close(finished) }:
	case <-ctx.Done():
		return ctx.Err()
	case <-h.quit:
		return ErrClosed
	}
	<-finished
	return nil
}

// EnsureImage implements executor.Runtime.
func (f *Fake) EnsureImage(ctx context.Context, ref string, policy executor.PullPolicy) error {
	var err error
	if derr := f.host.do(ctx, func(s *fakeState) { err = s.ensureImage(ref, policy) }); derr != nil {
		return derr
	}
	return err
}

func (s *fakeState) ensureImage(ref string, policy executor.PullPolicy) error {
	if s.pulled[ref] && policy != executor.PullAlways {
		return nil
	}
	if policy == executor.PullNever {
		return fmt.Errorf("%w: %s is not present and the pull policy is Never", executor.ErrImagePull, ref)
	}
	if s.host.cfg.Images[ref] == nil {
		return fmt.Errorf("%w: %s: %w", executor.ErrImagePull, ref, executor.ErrNotFound)
	}
	s.pulled[ref] = true
	return nil
}

// Start implements executor.Runtime.
func (f *Fake) Start(ctx context.Context, spec executor.InstanceSpec) error {
	if err := spec.Validate(); err != nil {
		return err
	}
	if err := f.host.cfg.Permissions.Check(&spec); err != nil {
		return fmt.Errorf("start %s: %w", spec.ID, err)
	}
	var err error
	if derr := f.host.do(ctx, func(s *fakeState) { err = s.start(&spec) }); derr != nil {
		return derr
	}
	return err
}

func (s *fakeState) start(spec *executor.InstanceSpec) error {
	existing := s.instance(spec.ID)
	for _, c := range existing {
		if c.instance.SpecHash != spec.SpecHash {
			return fmt.Errorf("start %s: %w (runs hash %s, asked for %s)", spec.ID, executor.ErrConflict, c.instance.SpecHash, spec.SpecHash)
		}
	}
	var missing []executor.ContainerSpec
	for _, cs := range spec.StageContainers() {
		if _, ok := s.containers[executor.RuntimeID(spec.ID, cs.Name)]; !ok {
			missing = append(missing, cs)
		}
	}
	// Check every image first, so that a failure leaves nothing behind.
	for _, cs := range missing {
		policy := executor.PullIfNotPresent
		if cs.PullPolicy == executor.PullNever {
			policy = executor.PullNever
		}
		if err := s.ensureImage(cs.Image, policy); err != nil {
			return fmt.Errorf("start %s: container %s: %w", spec.ID, cs.Name, err)
		}
	}
	inst := executor.InstanceState{
		ID: spec.ID, Namespace: spec.Namespace, Workload: spec.Workload, SpecHash: spec.SpecHash,
		Revision: spec.Revision, Node: spec.Node, GracePeriod: spec.GracePeriod,
	}
	for _, cs := range missing {
		c := &fakeContainer{rid: executor.RuntimeID(spec.ID, cs.Name), instance: inst, spec: cs}
		if err := s.startProcess(c); err != nil {
			return fmt.Errorf("start %s: container %s: %w", spec.ID, cs.Name, err)
		}
		s.containers[c.rid] = c
	}
	return nil
}

// startProcess runs the container's program in a new process with its log file appended to.
func (s *fakeState) startProcess(c *fakeContainer) error {
	path := executor.LogPath(s.host.cfg.StateDir, c.instance.ID, c.spec.Name)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	log, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	s.nextPID++
	p := &fakeProcess{
		pid:     s.nextPID,
		signals: make(chan syscall.Signal, 8),
		execs:   make(chan *ExecCall),
		killed:  make(chan struct{}),
		exited:  make(chan struct{}),
		log:     log,
		status:  executor.StatusRunning,
	}
	env := make(map[string]string, len(c.spec.Env))
	for _, e := range c.spec.Env {
		env[e.Name] = e.Value
	}
	proc := &Process{
		Args:             executor.Argv(c.spec.Command, c.spec.Args, []string{c.spec.Image}, nil),
		Env:              env,
		MemoryLimitBytes: c.spec.MemoryLimitBytes,
		Signals:          p.signals,
		Execs:            p.execs,
		Killed:           p.killed,
		Log:              log,
	}
	c.proc = p
	prog := s.host.cfg.Images[c.spec.Image]
	h := s.host
	h.procs.Add(1)
	go func() { // a container's process; ends when its program returns (SIGKILL and Close make it)
		defer h.procs.Done()
		code := prog(proc)
		h.do(context.Background(), func(s *fakeState) { s.exited(c, p, code) })
	}()
	return nil
}

// exited records the end of a process and tells subscribers.
func (s *fakeState) exited(c *fakeContainer, p *fakeProcess, code int) {
	p.log.Close()
	p.status, p.exitedAt = executor.StatusExited, time.Now()
	switch {
	case p.wasKilled:
		p.exitCode = 128 + int(syscall.SIGKILL)
	case code == ExitOOM:
		p.exitCode, p.oom = 128+int(syscall.SIGKILL), true
		s.emit(executor.Event{Kind: executor.EventOOM, InstanceID: c.instance.ID, Container: c.spec.Name, Time: p.exitedAt})
	default:
		p.exitCode = code
	}
	close(p.exited)
	s.emit(executor.Event{Kind: executor.EventExit, InstanceID: c.instance.ID, Container: c.spec.Name,
		PID: p.pid, ExitCode: p.exitCode, OOMKilled: p.oom, Time: p.exitedAt})
}

// instance returns the containers of an instance, sorted by name.
func (s *fakeState) instance(id string) []*fakeContainer {
	var out []*fakeContainer
	for _, c := range s.containers {
		if c.instance.ID == id {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].spec.Name < out[j].spec.Name })
	return out
}

// Stop implements executor.Runtime.
func (f *Fake) Stop(ctx context.Context, id string, grace time.Duration) error {
	// As containerd's: the containers but the sidecars together, then the sidecars one at
	// a time, the last started first, all within one grace period.
	type sidecar struct {
		proc  *fakeProcess
		order int
	}
	var first []*fakeProcess
	var sidecars []sidecar
	if err := f.host.do(ctx, func(s *fakeState) {
		for _, c := range s.instance(id) {
			switch {
			case c.proc == nil:
			case c.spec.Sidecar:
				sidecars = append(sidecars, sidecar{c.proc, c.spec.Init})
			default:
				first = append(first, c.proc)
			}
		}
	}); err != nil {
		return err
	}
	sort.Slice(sidecars, func(i, j int) bool { return sidecars[i].order > sidecars[j].order })
	waves := [][]*fakeProcess{first}
	for _, sc := range sidecars {
		waves = append(waves, []*fakeProcess{sc.proc})
	}
	deadline := time.Now().Add(grace)
	for n, wave := range waves {
		left := grace
		if n > 0 && grace > 0 {
			left = max(time.Until(deadline), time.Millisecond)
		}
		errs := make([]error, len(wave))
		var wg sync.WaitGroup
		for i, p := range wave {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = f.stopProcess(ctx, p, left)
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("stop %s: %w", id, err)
		}
	}
	if err := f.host.do(ctx, func(s *fakeState) {
		for _, c := range s.instance(id) {
			delete(s.containers, c.rid)
			s.emit(executor.Event{Kind: executor.EventDeleted, InstanceID: id, Container: c.spec.Name, Time: time.Now()})
		}
	}); err != nil {
		return err
	}
	return os.RemoveAll(executor.LogDir(f.host.cfg.StateDir, id))
}

// stopProcess sends SIGTERM, then SIGKILL after grace, and waits for the exit.
func (f *Fake) stopProcess(ctx context.Context, p *fakeProcess, grace time.Duration) error {
	send := func(sig syscall.Signal) error {
		return f.host.do(ctx, func(s *fakeState) {
			if p.status == executor.StatusRunning {
				p.signal(sig)
			}
		})
	}
	if grace > 0 {
		if err := send(syscall.SIGTERM); err != nil {
			return err
		}
		timer := time.NewTimer(grace)
		defer timer.Stop()
		select {
		case <-p.exited:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
	}
	if err := send(syscall.SIGKILL); err != nil {
		return err
	}
	select {
	case <-p.exited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Restart implements executor.Runtime.
func (f *Fake) Restart(ctx context.Context, id, container string) error {
	var c *fakeContainer
	var proc *fakeProcess
	if err := f.host.do(ctx, func(s *fakeState) {
		if c = s.containers[executor.RuntimeID(id, container)]; c != nil {
			proc = c.proc
		}
	}); err != nil {
		return err
	}
	if c == nil {
		return fmt.Errorf("restart %s/%s: %w", id, container, executor.ErrNotFound)
	}
	if err := f.stopProcess(ctx, proc, c.instance.GracePeriod); err != nil {
		return fmt.Errorf("restart %s/%s: %w", id, container, err)
	}
	var err error
	if derr := f.host.do(ctx, func(s *fakeState) {
		if s.containers[c.rid] != c {
			err = fmt.Errorf("restart %s/%s: %w (stopped meanwhile)", id, container, executor.ErrNotFound)
			return
		}
		c.restarts++
		err = s.startProcess(c)
	}); derr != nil {
		return derr
	}
	return err
}

// Exec implements executor.Runtime: the container's Program receives the command on
// Process.Execs and answers it. A Program that does not read Execs (or is busy, as a
// frozen process is) makes Exec wait until ctx ends.
func (f *Fake) Exec(ctx context.Context, id, container string, argv []string) (int, error) {
	code, err := f.exec(ctx, id, container, argv)
	if err != nil {
		return -1, fmt.Errorf("exec %q in %s/%s: %w", argv, id, container, err)
	}
	return code, nil
}

func (f *Fake) exec(ctx context.Context, id, container string, argv []string) (int, error) {
	if len(argv) == 0 {
		return -1, fmt.Errorf("%w: empty command", executor.ErrInvalidSpec)
	}
	var proc *fakeProcess
	running := false
	if err := f.host.do(ctx, func(s *fakeState) {
		if c := s.containers[executor.RuntimeID(id, container)]; c != nil {
			proc, running = c.proc, c.proc.status == executor.StatusRunning
		}
	}); err != nil {
		return -1, err
	}
	switch {
	case proc == nil:
		return -1, executor.ErrNotFound
	case !running:
		return -1, executor.ErrNotRunning
	}
	call := &ExecCall{Argv: argv, result: make(chan execResult, 1)}
	select {
	case proc.execs <- call:
	case <-proc.exited:
		return -1, executor.ErrNotRunning
	case <-ctx.Done():
		return -1, ctx.Err()
	case <-f.host.quit:
		return -1, ErrClosed
	}
	select {
	case r := <-call.result:
		return r.code, r.err
	case <-proc.exited:
		return -1, fmt.Errorf("the container's process ended while the command ran: %w", executor.ErrNotRunning)
	case <-ctx.Done():
		return -1, ctx.Err()
	case <-f.host.quit:
		return -1, ErrClosed
	}
}

// List implements executor.Runtime.
func (f *Fake) List(ctx context.Context) ([]executor.InstanceState, error) {
	var out []executor.InstanceState
	err := f.host.do(ctx, func(s *fakeState) {
		byID := map[string]*executor.InstanceState{}
		for _, c := range s.containers {
			inst, ok := byID[c.instance.ID]
			if !ok {
				copied := c.instance
				inst = &copied
				byID[c.instance.ID] = inst
			}
			p := c.proc
			inst.Containers = append(inst.Containers, executor.ContainerState{
				Name: c.spec.Name, Image: c.spec.Image, RuntimeID: c.rid, Status: p.status, PID: p.pid,
				ExitCode: p.exitCode, ExitedAt: p.exitedAt, OOMKilled: p.oom, Restarts: c.restarts,
				Init: c.spec.Init, Sidecar: c.spec.Sidecar,
			})
		}
		for _, inst := range byID {
			sort.Slice(inst.Containers, func(i, j int) bool { return inst.Containers[i].Name < inst.Containers[j].Name })
			out = append(out, *inst)
		}
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, err
}

// Logs implements executor.Runtime.
func (f *Fake) Logs(ctx context.Context, id, container string, opts executor.LogOptions, w io.Writer) error {
	found := false
	if err := f.host.do(ctx, func(s *fakeState) { _, found = s.containers[executor.RuntimeID(id, container)] }); err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("logs %s/%s: %w", id, container, executor.ErrNotFound)
	}
	return executor.CopyLog(ctx, executor.LogPath(f.host.cfg.StateDir, id, container), opts, w)
}

// subscriber queues events for one Events call; the loop appends, the subscriber's
// goroutine drains, so a slow reader never blocks the loop.
type subscriber struct {
	queue []executor.Event
	wake  chan struct{}
}

func (s *fakeState) emit(ev executor.Event) {
	for sub := range s.subs {
		sub.queue = append(sub.queue, ev)
		select {
		case sub.wake <- struct{}{}:
		default:
		}
	}
}

// Events implements executor.Runtime.
func (f *Fake) Events(ctx context.Context) <-chan executor.Event {
	out := make(chan executor.Event)
	h := f.host
	sub := &subscriber{wake: make(chan struct{}, 1)}
	if err := h.do(ctx, func(s *fakeState) { s.subs[sub] = true }); err != nil {
		close(out)
		return out
	}
	h.subs.Add(1)
	go func() { // forwards sub's queue to out until ctx ends or the Fake closes
		defer h.subs.Done()
		defer close(out)
		defer h.do(context.Background(), func(s *fakeState) { delete(s.subs, sub) })
		for {
			var batch []executor.Event
			if h.do(ctx, func(*fakeState) { batch, sub.queue = sub.queue, nil }) != nil {
				return
			}
			for _, ev := range batch {
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				case <-h.quit:
					return
				}
			}
			if len(batch) > 0 {
				continue
			}
			select {
			case <-sub.wake:
			case <-ctx.Done():
				return
			case <-h.quit:
				return
			}
		}
	}()
	return out
}
