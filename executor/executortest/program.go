package executortest

import (
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"syscall"
	"time"
)

// Program is what an image does in the Fake. It runs in its own goroutine for as long as
// the container's process lives and returns the exit code. It must return promptly once
// Killed is closed (the code is then ignored: a killed process exits with 137).
type Program func(p *Process) int

// ExitOOM, returned by a Program, ends the process as the kernel's OOM killer would: exit
// code 137 and OOMKilled.
const ExitOOM = -1

// Process is a running container as its Program sees it.
type Process struct {
	// Args is the process argv (the image's entrypoint combined with the manifest's).
	Args []string
	// Env is the environment: the image's, then the container's.
	Env map[string]string
	// MemoryLimitBytes is the container's memory limit; 0 means none.
	MemoryLimitBytes int64
	// Signals delivers every signal but SIGKILL, which closes Killed instead. SIGSTOP and
	// SIGCONT come here too: a Program models being stopped by waiting for SIGCONT.
	Signals <-chan syscall.Signal
	// Execs delivers the commands Runtime.Exec runs in the container. The Program answers
	// each with Exit or Fail; until it takes one, Exec waits, as for a real command stuck
	// on a frozen process.
	Execs <-chan *ExecCall
	// Killed is closed by SIGKILL.
	Killed <-chan struct{}
	// Log is the container's stdout and stderr.
	Log io.Writer
}

// ExecCall is a command run in a container by Runtime.Exec, as its Program sees it.
type ExecCall struct {
	Argv   []string
	result chan execResult // buffered: answering never blocks the Program
}

type execResult struct {
	code int
	err  error
}

// Exit ends the command with an exit code.
func (c *ExecCall) Exit(code int) { c.result <- execResult{code: code} }

// Fail makes the command one that could not be started (no such file): Exec returns err.
func (c *ExecCall) Fail(err error) { c.result <- execResult{code: -1, err: err} }

// helloBinary is where the hello image keeps its binary, the only command it can exec.
const helloBinary = "/hello"

// HelloProgram models examples/hello for the Fake, knob for knob: it logs
// "hello: listening ..." at start, exits with EXIT_CODE after EXIT_AFTER, dies of OOM when
// ALLOC_MB exceeds its memory limit, logs a tick every LOG_EVERY, and exits 0 on SIGTERM
// unless IGNORE_SIGTERM is "1". SIGUSR1 makes it unhealthy and SIGUSR2 healthy again;
// SIGSTOP freezes it until SIGCONT. It answers the exec "/hello -check URL" with 0 when
// healthy and 1 when not, whatever the URL, and takes no exec while frozen. It does not
// serve HTTP.
func HelloProgram(p *Process) int {
	env := p.Env
	if mb, _ := strconv.ParseInt(env["ALLOC_MB"], 10, 64); mb > 0 {
		if p.MemoryLimitBytes > 0 && mb<<20 > p.MemoryLimitBytes {
			return ExitOOM
		}
		fmt.Fprintf(p.Log, "hello: allocated %d MiB\n", mb)
	}
	fmt.Fprintf(p.Log, "hello: listening on %s, version %s\n", env["LISTEN"], env["VERSION"])
	var exit, tick <-chan time.Time
	if d, err := time.ParseDuration(env["EXIT_AFTER"]); err == nil {
		exit = time.After(d)
	}
	if d, err := time.ParseDuration(env["LOG_EVERY"]); err == nil && d > 0 {
		t := time.NewTicker(d)
		defer t.Stop()
		tick = t.C
	}
	failing := false
	// onSignal acts on a signal as the app does and reports whether the process ends.
	var onSignal func(s syscall.Signal) bool
	onSignal = func(s syscall.Signal) bool {
		switch {
		case s == syscall.SIGSTOP:
			pending, killed := waitForSIGCONT(p)
			if killed {
				return true
			}
			for _, s := range pending { // delivered once the process runs again, as the kernel does
				if onSignal(s) {
					return true
				}
			}
			return false
		case s == syscall.SIGUSR1 || s == syscall.SIGUSR2:
			failing = s == syscall.SIGUSR1
			return false
		case s == syscall.SIGCONT, s == syscall.SIGTERM && env["IGNORE_SIGTERM"] == "1":
			return false
		}
		fmt.Fprintf(p.Log, "hello: got %v, shutting down\n", s)
		return true
	}
	for n := 1; ; n++ {
		select {
		case <-p.Killed:
			return 0
		case <-tick:
			fmt.Fprintf(p.Log, "hello: tick %d\n", n)
		case <-exit:
			code := 1
			if c, err := strconv.Atoi(env["EXIT_CODE"]); err == nil {
				code = c
			}
			fmt.Fprintf(p.Log, "hello: EXIT_AFTER reached, exiting with %d\n", code)
			return code
		case call := <-p.Execs:
			// Signals sent before the command ran act first, as they would on a real
			// process, which the command takes milliseconds to reach.
			for pending := true; pending; {
				select {
				case s := <-p.Signals:
					if onSignal(s) {
						return 0
					}
				default:
					pending = false
				}
			}
			answerHello(call, failing)
		case s := <-p.Signals:
			if onSignal(s) {
				return 0
			}
		}
	}
}

// answerHello answers an exec in the hello image.
func answerHello(call *ExecCall, failing bool) {
	switch {
	case call.Argv[0] != helloBinary:
		call.Fail(fmt.Errorf("exec %q: %w", call.Argv[0], fs.ErrNotExist))
	case len(call.Argv) != 3 || call.Argv[1] != "-check":
		call.Exit(2) // usage
	case failing:
		call.Exit(1)
	default:
		call.Exit(0)
	}
}

// waitForSIGCONT is a stopped process: it does nothing until SIGCONT or SIGKILL, and
// returns the signals that came meanwhile.
func waitForSIGCONT(p *Process) (pending []syscall.Signal, killed bool) {
	for {
		select {
		case <-p.Killed:
			return nil, true
		case s := <-p.Signals:
			if s == syscall.SIGCONT {
				return pending, false
			}
			pending = append(pending, s)
		}
	}
}
