// Command step is the program of the init container and sidecar end-to-end tests. Each
// container appends what it does, one line at a time, to the file EVENTS names (a hostPath
// the test reads), so that the test sees in which order the containers ran.
//
//	step failuntil COUNTER N  count this run in the file COUNTER; exit 1 until the Nth run, then 0
//	step write PATH TEXT      write TEXT to PATH and exit 0
//	step app PATH             log the content of PATH, then run until SIGTERM
//	step crashonce FLAG       the first run (FLAG absent): create FLAG and exit 1 two seconds
//	                          later; later runs: run until SIGTERM
//	step sidecar              run until SIGTERM
//
// A process that runs until SIGTERM logs "NAME got SIGTERM", takes STOP_DELAY (a Go
// duration) to finish, logs "NAME exits" and exits 0. NAME is the NAME variable.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	name := os.Getenv("NAME")
	if len(args) == 0 {
		logf("%s: no command", name)
		return 2
	}
	switch args[0] {
	case "failuntil":
		n := 0
		if b, err := os.ReadFile(args[1]); err == nil {
			n, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		n++
		if err := os.WriteFile(args[1], []byte(strconv.Itoa(n)), 0o644); err != nil {
			logf("%s: %v", name, err)
			return 2
		}
		want, _ := strconv.Atoi(args[2])
		if n < want {
			logf("%s run %d fails", name, n)
			return 1
		}
		logf("%s run %d succeeds", name, n)
		return 0
	case "write":
		if err := os.WriteFile(args[1], []byte(args[2]), 0o644); err != nil {
			logf("%s: %v", name, err)
			return 2
		}
		logf("%s wrote %s", name, args[1])
		return 0
	case "app":
		b, err := os.ReadFile(args[1])
		if err != nil {
			logf("%s started without %s: %v", name, args[1], err)
			return 1
		}
		logf("%s started and read %q", name, b)
	case "crashonce":
		if _, err := os.Stat(args[1]); err != nil {
			if err := os.WriteFile(args[1], nil, 0o644); err != nil {
				logf("%s: %v", name, err)
				return 2
			}
			logf("%s started and crashes", name)
			time.Sleep(2 * time.Second) // long enough for the test to see it run
			return 1
		}
		logf("%s started", name)
	case "sidecar":
		logf("%s started", name)
	default:
		logf("%s: unknown command %q", name, args[0])
		return 2
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	<-term
	logf("%s got SIGTERM", name)
	delay, _ := time.ParseDuration(os.Getenv("STOP_DELAY"))
	time.Sleep(delay)
	logf("%s exits", name)
	return 0
}

// logf appends a line to the EVENTS file and writes it to stdout.
func logf(format string, args ...any) {
	line := fmt.Sprintf(format, args...) + "\n"
	os.Stdout.WriteString(line)
	f, err := os.OpenFile(os.Getenv("EVENTS"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	f.WriteString(line)
}
