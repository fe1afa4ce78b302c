package main

import (
	"cmp"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoalhq/shoal/agent"
	"github.com/shoalhq/shoal/termsafe"
)

const (
	defaultAgentAddr = "127.0.0.1:7070"
	agentAddrUsage   = "the agent's API address: host:port (http://, or https:// with --ca-cert), http://… or https://…"
)

func newStatusCommand() *cobra.Command {
	var (
		addr, output string
		api          apiClientFlags
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the revision, workloads and instances as an agent sees them",
		Long: `Status asks an agent (--addr) for its status: the revision in force and the last one applied,
the Git source's health (with file:line findings of a rejected revision), each workload with
its instances, their phase, restarts and last exit reason, replicas that could not be placed
and why, and the timeline of the revision on this node.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := api.client(addr)
			if err != nil {
				return &exitError{code: exitTrouble, err: err}
			}
			var st agent.Status
			raw, err := client.getJSON(cmd.Context(), "/status", &st)
			if err != nil {
				return &exitError{code: exitTrouble, err: err}
			}
			if output == "json" {
				_, err := cmd.OutOrStdout().Write(raw)
				return err
			}
			printStatus(cmd.OutOrStdout(), &st)
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", defaultAgentAddr, agentAddrUsage)
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	api.register(cmd.Flags())
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
	if st.NotJoined != "" {
		fmt.Fprintf(w, "cluster:   NOT JOINED, running nothing: %s\n", termsafe.String(st.NotJoined))
	}
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
	fmt.Fprintln(tw, "NODE\tADDRESS\tPOD SUBNET\tSTATE\tREVISION\tCPU\tMEMORY")
	for _, n := range st.Nodes {
		state := "alive"
		if !n.Alive {
			state = "DEAD"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%dm\t%dMi\n", n.Name, n.Addr, cmp.Or(n.PodSubnet, "-"), state, short(n.Revision), n.MilliCPU, n.Memory>>20)
	}
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(tw, "WORKLOAD\tINSTANCE\tNODE\tADDRESS\tPHASE\tRESTARTS\tLAST EXIT\tMESSAGE")
	for _, wl := range st.Workloads {
		fmt.Fprintf(tw, "%s/%s\t%d/%d ready\t\t\t\t\t\t\n", wl.Namespace, wl.Name, wl.Ready, wl.Replicas)
		if r := wl.Rollout; r != nil {
			fmt.Fprintf(tw, "\trollout %s\t\t\t%s\t\t\t%s\n", short(r.SpecHash), strings.ToUpper(r.State), termsafe.String(progress(r)))
		}
		for _, in := range wl.Instances {
			fmt.Fprintf(tw, "\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", in.ID, in.Node, cmp.Or(in.Addr, "-"), in.Phase, in.Restarts, in.LastExit, in.Message)
		}
		for _, u := range wl.Unplaced {
			id := u.InstanceID
			if u.More > 0 {
				id += fmt.Sprintf(" and %d more", u.More)
			}
			fmt.Fprintf(tw, "\t%s\t-\t-\tUnplaced\t\t\t%s\n", id, u.Reason)
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
		follow, raw     bool
		tail            int
		api             apiClientFlags
	)
	cmd := &cobra.Command{
		Use:   "logs WORKLOAD",
		Short: "Print the logs of a workload's instances on a node",
		Long: `Logs prints what the workload's containers on the agent's node (--addr) wrote to stdout and
stderr, each line prefixed with [instance/container]. With -f it keeps printing new lines.

Control characters in the logs (terminal escape sequences, carriage returns) are printed
as visible \u00XX escapes, as everything the CLI prints from workloads and commits is, so
that a container cannot drive the terminal of whoever reads its logs. --raw prints the
bytes as written, for a file or a program that wants them exactly.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{"namespace": {namespace}, "workload": {args[0]}, "tail": {strconv.Itoa(tail)}}
			if follow {
				q.Set("follow", "1")
			}
			client, err := api.client(addr)
			if err != nil {
				return &exitError{code: exitTrouble, err: err}
			}
			resp, err := client.get(cmd.Context(), "/logs?"+q.Encode())
			if err != nil {
				return &exitError{code: exitTrouble, err: err}
			}
			defer resp.Body.Close()
			out := cmd.OutOrStdout()
			if sw, ok := out.(*termsafe.Writer); ok && raw {
				out = sw.Unwrap()
			}
			_, err = io.Copy(out, resp.Body)
			if cmd.Context().Err() != nil {
				return nil
			}
			return err
		},
	}
	cmd.Flags().StringVar(&addr, "addr", defaultAgentAddr, agentAddrUsage)
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "default", "the workload's namespace")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines")
	cmd.Flags().IntVar(&tail, "tail", -1, "print only the last N lines (-1: all)")
	cmd.Flags().BoolVar(&raw, "raw", false, "print the logs' bytes as they are, control characters included")
	api.register(cmd.Flags())
	return cmd
}
