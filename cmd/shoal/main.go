// Command shoal is Shoal's single binary: the daemon (`shoal agent`) and the tools around
// it (`validate`, `plan`, `status`, ...). It turns flags into configuration and wires the
// rooms together; the logic lives in the packages it calls.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/shoalhq/shoal/termsafe"
)

// exitError carries a process exit code through cobra without printing usage.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// Exit codes shared by every command, in the spirit of `diff`: 0 clean, 1 findings, 2 trouble.
const (
	exitFindings = 1
	exitTrouble  = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the CLI with args and returns the process exit code. Everything the
// commands print goes through termsafe, since much of it (commit messages, logs, manifest
// text, agents' errors) comes from people and programs other than the one reading it.
func run(args []string, rawStdout, rawStderr io.Writer) int {
	stdout, stderr := termsafe.NewWriter(rawStdout), termsafe.NewWriter(rawStderr)
	defer stdout.Flush()
	defer stderr.Flush()
	root := newRootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "shoal:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "shoal:", err)
	return exitTrouble
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "shoal",
		Short:         "GitOps deployments without a control plane",
		Long:          "Shoal runs Kubernetes-shaped manifests from Git on containerd, with no etcd, no API server and no leader.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newAgentCommand(), newValidateCommand(), newPlanCommand(), newStatusCommand(), newLogsCommand(), newExplainCommand(), newCACommand(), newRolloutCommand())
	return root
}
