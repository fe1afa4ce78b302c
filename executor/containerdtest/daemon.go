// Package containerdtest starts a private containerd for tests: its own config (CRI plugin
// off), root, state, sockets and runc root under one short directory in /tmp, so it never
// touches the system containerd in /run/containerd. It stops the daemon afterwards and
// removes what it left: tasks, shims, mounts, cgroups and files.
//
// It needs root and the containerd, containerd-shim-runc-v2 and runc binaries
// (apt-get install -y containerd runc); without them it fails the test and says so.
// It must not be used outside tests.
package containerdtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
	"github.com/shoalhq/shoal/executor/internal/mounts"
)

const (
	readyTimeout = 30 * time.Second
	// staleAfter is how old the directory of a daemon that no longer answers must be before
	// another test run removes it (younger ones may belong to a daemon still starting).
	staleAfter  = 10 * time.Minute
	dirPattern  = "/tmp/ctd-*"
	stopTimeout = 15 * time.Second
	configTOML  = `version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = %[3]q

[ttrpc]
  address = %[4]q

[debug]
  level = "warn"

[plugins."io.containerd.internal.v1.opt"]
  path = %[5]q
`
)

// Daemon is a private containerd started for tests.
type Daemon struct {
	// Dir holds everything the daemon and the executor under test write.
	Dir string
	// Socket is the daemon's gRPC socket.
	Socket string
	// RuncRoot is a runc state directory for this daemon only (executor.WithRuncRoot).
	RuncRoot string
	// StateDir is a directory for the executor's volumes and logs (executor.WithStateDir).
	StateDir string

	config string
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
}

// SkipShort skips t under -short: tests of a private containerd need root, the containerd
// binaries and minutes, and `go test -short` is the unit-test run that needs none of them.
func SkipShort(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs root and a private containerd (skipped with -short)")
	}
}

// New starts a private containerd and stops and cleans it up when the test ends. It skips
// the test under -short and fails it if the daemon cannot run here.
func New(t testing.TB) *Daemon {
	t.Helper()
	SkipShort(t)
	d, err := Start()
	if err != nil {
		t.Fatalf("containerdtest: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("containerdtest: %v", err)
		}
	})
	return d
}

// Start starts a private containerd that the caller must Close, for a TestMain that shares
// one daemon between tests.
func Start() (*Daemon, error) {
	if err := checkHost(); err != nil {
		return nil, err
	}
	sweepStale()
	// Unix socket paths must stay under 108 bytes: a short directory in /tmp, not t.TempDir().
	dir, err := os.MkdirTemp(filepath.Dir(dirPattern), filepath.Base(dirPattern))
	if err != nil {
		return nil, err
	}
	d := &Daemon{
		Dir:      dir,
		Socket:   filepath.Join(dir, "c.sock"),
		RuncRoot: filepath.Join(dir, "runc"),
		StateDir: filepath.Join(dir, "executor"),
		config:   filepath.Join(dir, "config.toml"),
	}
	cfg := fmt.Sprintf(configTOML, filepath.Join(dir, "root"), filepath.Join(dir, "state"),
		d.Socket, d.Socket+".ttrpc", filepath.Join(dir, "opt"))
	if err := os.WriteFile(d.config, []byte(cfg), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := d.run(); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// checkHost explains what is missing for a private containerd.
func checkHost() error {
	if os.Geteuid() != 0 {
		return errors.New("a private containerd needs root; run the tests as root (CI does)")
	}
	for _, bin := range []string{"containerd", "containerd-shim-runc-v2", "runc"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%s not found in PATH; install it: apt-get install -y containerd runc", bin)
		}
	}
	return nil
}

// run starts the daemon process and waits until it answers.
func (d *Daemon) run() error {
	logFile, err := os.OpenFile(filepath.Join(d.Dir, "containerd.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child has its own descriptor
	cmd := exec.Command("containerd", "--config", d.config)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// If the test binary dies without cleaning up, the daemon goes too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start containerd: %w", err)
	}
	d.cmd, d.exited = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(d.exited) }() // ends when the daemon does; Close and Restart wait for it
	deadline := time.Now().Add(readyTimeout)
	for {
		if err := d.ping(); err == nil {
			return nil
		}
		select {
		case <-d.exited:
			return fmt.Errorf("containerd exited at start: %s", d.logTail())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("containerd not ready after %v: %s", readyTimeout, d.logTail())
		}
	}
}

func (d *Daemon) ping() error {
	if _, err := os.Stat(d.Socket); err != nil {
		return err
	}
	c, err := containerd.New(d.Socket, containerd.WithTimeout(time.Second))
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = c.Version(ctx)
	return err
}

func (d *Daemon) logTail() string {
	b, _ := os.ReadFile(filepath.Join(d.Dir, "containerd.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// PID returns the daemon's process ID.
func (d *Daemon) PID() int { return d.cmd.Process.Pid }

// Restart stops the daemon with SIGTERM and starts it again on the same directories.
// Shims and the containers they run survive, as on a real node.
func (d *Daemon) Restart() error {
	if err := d.terminate(); err != nil {
		return err
	}
	return d.run()
}

// terminate sends SIGTERM to the daemon and waits for it, killing it after stopTimeout.
func (d *Daemon) terminate() error {
	if d.cmd == nil {
		return nil
	}
	select {
	case <-d.exited:
		return nil
	default:
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("SIGTERM containerd: %w", err)
	}
	select {
	case <-d.exited:
		return nil
	case <-time.After(stopTimeout):
		d.cmd.Process.Kill()
		<-d.exited
		return fmt.Errorf("containerd ignored SIGTERM for %v", stopTimeout)
	}
}

// Close removes every container the daemon runs, stops it, kills shims and processes
// left behind, unmounts what is mounted under Dir, removes the namespaces' cgroups and Dir.
func (d *Daemon) Close() error {
	var errs []error
	nsList := d.removeAllContainers()
	errs = append(errs, d.terminate())
	killed, err := d.killShims()
	errs = append(errs, err, mounts.UnmountUnder(d.Dir))
	removeCgroups(nsList, killed)
	errs = append(errs, os.RemoveAll(d.Dir))
	return errors.Join(errs...)
}

// removeAllContainers kills and deletes every task and container in every namespace, and
// returns the namespaces. Best effort: the daemon may already be gone.
func (d *Daemon) removeAllContainers() []string {
	if d.cmd == nil || d.ping() != nil {
		return nil
	}
	c, err := containerd.New(d.Socket, containerd.WithTimeout(5*time.Second))
	if err != nil {
		return nil
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	nsList, _ := c.NamespaceService().List(ctx)
	for _, ns := range nsList {
		nctx := namespaces.WithNamespace(ctx, ns)
		cts, _ := c.Containers(nctx)
		for _, ct := range cts {
			if task, err := ct.Task(nctx, nil); err == nil {
				task.Kill(nctx, syscall.SIGKILL, containerd.WithKillAll)
				task.Delete(nctx, containerd.WithProcessKill)
			}
			ct.Delete(nctx, containerd.WithSnapshotCleanup)
		}
	}
	return nsList
}

// sweepStale cleans up after earlier test binaries that died without running their
// cleanup (a test timeout, a kill): their shims and containers outlive them.
func sweepStale() {
	dirs, _ := filepath.Glob(dirPattern)
	for _, dir := range dirs {
		fi, err := os.Stat(dir)
		if err != nil || time.Since(fi.ModTime()) < staleAfter {
			continue
		}
		d := &Daemon{Dir: dir, Socket: filepath.Join(dir, "c.sock")}
		if d.ping() == nil {
			continue // alive: another test run's
		}
		d.Close()
	}
}

// killShims kills the shims this daemon started (found by the -address on their command
// line) and the processes they still parent, and returns the namespace/ID cgroup paths
// of the containers they ran, which nobody will now delete.
func (d *Daemon) killShims() ([]string, error) {
	procs, err := processes()
	if err != nil {
		return nil, err
	}
	var cgroups []string
	for _, p := range procs {
		args := strings.Split(p.cmdline, "\x00")
		if len(args) == 0 || !strings.Contains(args[0], "containerd-shim") || argAfter(args, "-address") != d.Socket {
			continue
		}
		for _, child := range procs {
			if child.ppid == p.pid && child.pid > 0 {
				syscall.Kill(child.pid, syscall.SIGKILL)
			}
		}
		syscall.Kill(p.pid, syscall.SIGKILL)
		if ns, id := argAfter(args, "-namespace"), argAfter(args, "-id"); ns != "" && id != "" {
			cgroups = append(cgroups, filepath.Join(ns, id))
			os.Remove(shimSocket(d.Socket, ns, id)) // a killed shim cannot remove its own
		}
	}
	return cgroups, nil
}

// shimSocket is where a containerd 1.6/1.7 shim listens: containerd puts every daemon's
// shim sockets in /run/containerd/s, named by a hash of the daemon's address, the
// namespace and the container ID.
func shimSocket(address, ns, id string) string {
	sum := sha256.Sum256([]byte(filepath.Join(address, ns, id)))
	return filepath.Join("/run/containerd/s", hex.EncodeToString(sum[:]))
}

// argAfter returns the argument following flag, or "".
func argAfter(args []string, flag string) string {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag {
			return args[i+1]
		}
	}
	return ""
}

type process struct {
	pid, ppid int
	cmdline   string // NUL-separated arguments
}

func processes() ([]process, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []process
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue // exited meanwhile
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// stat is "pid (comm) state ppid ..."; comm may hold spaces, so split after ')'.
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		out = append(out, process{pid: pid, ppid: ppid, cmdline: string(cmdline)})
	}
	return out, nil
}

// removeCgroups removes the cgroups of containers whose shims were killed (runc would have
// removed them on delete), then the per-namespace parents once empty. Only paths this
// daemon used are touched. A killed process leaves its cgroup a moment after SIGKILL, so
// a busy cgroup is tried again for a few seconds.
func removeCgroups(nsList, containers []string) {
	for _, c := range containers {
		nsList = append(nsList, filepath.Dir(c))
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, rel := range append(containers, nsList...) { // children before parents
		dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", rel))
		for _, dir := range append(dirs, filepath.Join("/sys/fs/cgroup", rel)) {
			for errors.Is(os.Remove(dir), syscall.EBUSY) && time.Now().Before(deadline) && slices.Contains(containers, rel) {
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
}
