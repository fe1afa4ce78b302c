package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoalhq/shoal/agent"
)

const defaultAgentAddr = "127.0.0.1:7070"

func newStatusCommand() *cobra.Command {
	var addr, output string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the revision, workloads and instances as an agent sees them",
		Long: `Status asks an agent (--addr) for its status: the revision in force and the last one applied,
the Git source's health (with file:line findings of a rejected revision), each workload with
its instances, their phase, restarts and last exit reason, replicas that could not be placed
and why, and the timeline of the revision on this node.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := http.Get("http://" + addr + "/status")
			if err != nil {
				return &exitError{code: exitTrouble, err: err}
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return &exitError{code: exitTrouble, err: fmt.Errorf("agent at %s: %s", addr, resp.Status)}
			}
			if output == "json" {
				_, err := io.Copy(cmd.OutOrStdout(), resp.Body)
				return err
			}
			var st agent.Status
			if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
				return &exitError{code: exitTrouble, err: fmt.Errorf("agent at %s: %w", addr, err)}
			}
			printStatus(cmd.OutOrStdout(), &st)
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", defaultAgentAddr, "the agent's HTTP address")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

// printStatus renders a Status for a person.
func printStatus(w io.Writer, st *agent.Status) {
	fmt.Fprintf(w, "node:      %s\n", st.Node)
	if st.Desired != nil {
		fmt.Fprintf(w, "desired:   %s %s (%s, %s)\n", short(st.Desired.Commit), firstLine(st.Desired.Message), st.Desired.Author, ago(st.Time, st.Desired.Time))
	} else {
		fmt.Fprintln(w, "desired:   none yet")
	}
	applied := "none yet"
	if st.Applied != nil {
		applied = short(st.Applied.Commit)
	}
	state := "converging"
	if st.Converged {
		state = "converged"
	}
	fmt.Fprintf(w, "applied:   %s (%s)\n", applied, state)
	switch {
	case st.Sync.Error != "":
		fmt.Fprintf(w, "sync:      ERROR %s\n", st.Sync.Error)
	case !st.Sync.LastCheck.IsZero():
		fmt.Fprintf(w, "sync:      ok, checked %s\n", ago(st.Time, st.Sync.LastCheck))
	default:
		fmt.Fprintln(w, "sync:      not checked yet")
	}
	for _, d := range st.Sync.Diagnostics {
		fmt.Fprintf(w, "  %s\n", d)
	}
	if len(st.Timeline) > 0 {
		var parts []string
		for _, s := range st.Timeline {
			parts = append(parts, fmt.Sprintf("%s +%s", s.Name, s.Time.Sub(st.Timeline[0].Time).Round(time.Millisecond)))
		}
		fmt.Fprintf(w, "timeline:  %s\n", strings.Join(parts, ", "))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tADDRESS\tSTATE\tREVISION\tCPU\tMEMORY")
	for _, n := range st.Nodes {
		state := "alive"
		if !n.Alive {
			state = "DEAD"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%dm\t%dMi\n", n.Name, n.Addr, state, short(n.Revision), n.MilliCPU, n.Memory>>20)
	}
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(tw, "WORKLOAD\tINSTANCE\tNODE\tPHASE\tRESTARTS\tLAST EXIT\tMESSAGE")
	for _, wl := range st.Workloads {
		fmt.Fprintf(tw, "%s/%s\t%d/%d ready\t\t\t\t\t\n", wl.Namespace, wl.Name, wl.Ready, wl.Replicas)
		for _, in := range wl.Instances {
			fmt.Fprintf(tw, "\t%s\t%s\t%s\t%d\t%s\t%s\n", in.ID, in.Node, in.Phase, in.Restarts, in.LastExit, in.Message)
		}
		for _, u := range wl.Unplaced {
			id := u.InstanceID
			if u.More > 0 {
				id += fmt.Sprintf(" and %d more", u.More)
			}
			fmt.Fprintf(tw, "\t%s\t-\tUnplaced\t\t\t%s\n", id, u.Reason)
		}
	}
	tw.Flush()
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return now.Sub(t).Round(time.Second).String() + " ago"
}

func newLogsCommand() *cobra.Command {
	var (
		addr, namespace string
		follow          bool
		tail            int
	)
	cmd := &cobra.Command{
		Use:   "logs WORKLOAD",
		Short: "Print the logs of a workload's instances on a node",
		Long: `Logs prints what the workload's containers on the agent's node (--addr) wrote to stdout and
stderr, each line prefixed with [instance/container]. With -f it keeps printing new lines.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{"namespace": {namespace}, "workload": {args[0]}, "tail": {strconv.Itoa(tail)}}
			if follow {
				q.Set("follow", "1")
			}
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet, "http://"+addr+"/logs?"+q.Encode(), nil)
			if err != nil {
				return &exitError{code: exitTrouble, err: err}
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return &exitError{code: exitTrouble, err: err}
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
				return &exitError{code: exitTrouble, err: fmt.Errorf("%s", strings.TrimSpace(string(msg)))}
			}
			_, err = io.Copy(cmd.OutOrStdout(), resp.Body)
			if cmd.Context().Err() != nil {
				return nil
			}
			return err
		},
	}
	cmd.Flags().StringVar(&addr, "addr", defaultAgentAddr, "the agent's HTTP address")
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "default", "the workload's namespace")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines")
	cmd.Flags().IntVar(&tail, "tail", -1, "print only the last N lines (-1: all)")
	return cmd
}
