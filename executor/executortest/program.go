package executortest

import (
	"fmt"
	"io"
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
	// Signals delivers every signal but SIGKILL, which closes Killed instead.
	Signals <-chan syscall.Signal
	// Killed is closed by SIGKILL.
	Killed <-chan struct{}
	// Log is the container's stdout and stderr.
	Log io.Writer
}

// HelloProgram models examples/hello for the Fake, knob for knob: it logs
// "hello: listening ..." at start, exits with EXIT_CODE after EXIT_AFTER, dies of OOM when
// ALLOC_MB exceeds its memory limit, logs a tick every LOG_EVERY, and exits 0 on SIGTERM
// unless IGNORE_SIGTERM is "1". It does not serve HTTP.
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
		case s := <-p.Signals:
			if s == syscall.SIGTERM && env["IGNORE_SIGTERM"] == "1" {
				continue
			}
			fmt.Fprintf(p.Log, "hello: got %v, shutting down\n", s)
			return 0
		}
	}
}
