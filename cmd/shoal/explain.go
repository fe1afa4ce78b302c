package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/shoalhq/shoal/planner"
	"github.com/shoalhq/shoal/spec"
)

func newExplainCommand() *cobra.Command {
	var (
		addr, namespace, output string
		api                     apiClientFlags
	)
	cmd := &cobra.Command{
		Use:   "explain WORKLOAD",
		Short: "Say why each replica of a workload runs where it does, or why it cannot run",
		Long: `Explain asks an agent (--addr) to replay its last plan for one Deployment and prints, per
replica, the node it went to with each candidate's scores, or the nodes that refused it and why.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{"namespace": {namespace}, "workload": {args[0]}}
			client, err := api.client(addr)
			if err != nil {
				return &exitError{code: exitTrouble, err: err}
			}
			var e planner.Explanation
			raw, err := client.getJSON(cmd.Context(), "/explain?"+q.Encode(), &e)
			if err != nil {
				return &exitError{code: exitTrouble, err: err}
			}
			if output == "json" {
				_, err := cmd.OutOrStdout().Write(raw)
				return err
			}
			printExplanation(cmd.OutOrStdout(), e)
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", defaultAgentAddr, agentAddrUsage)
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "default", "the workload's namespace")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	api.register(cmd.Flags())
	return cmd
}

func printExplanation(w io.Writer, e planner.Explanation) {
	fmt.Fprintf(w, "%s/%s (spec %s)\n", e.Namespace, e.Workload, e.SpecHash)
	for _, r := range e.Replicas {
		fmt.Fprintf(w, "  replica %d  %s\n    %s\n", r.Slot, r.InstanceID, r.Summary)
		for _, c := range r.Candidates {
			var scores []string
			for _, s := range c.Scores {
				scores = append(scores, fmt.Sprintf("%s %d×%d", s.Ranker, s.Points, s.Weight))
			}
			fmt.Fprintf(w, "    candidate %-16s total %-6d preference %d  (%s)\n", c.Node, c.Total, c.Preference, strings.Join(scores, ", "))
		}
		for _, rej := range r.Rejected {
			fmt.Fprintf(w, "    rejected  %-16s %s\n", rej.Node, rej.Reason)
		}
	}
	if b := e.Beyond; b != nil {
		fmt.Fprintf(w, "  replicas %d to %d\n    %s\n", b.Slot, b.Slot+b.More, b.Reason)
	}
}

// clusterFile is the YAML a cluster is described in for `shoal plan --cluster FILE`.
type clusterFile struct {
	Nodes []struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
		CPU    string            `json:"cpu"`
		Memory string            `json:"memory"`
	} `json:"nodes"`
}

// loadClusterView reads the cluster to place on: a file of nodes, or a running agent's view.
func loadClusterView(ctx context.Context, file, from string, api apiClientFlags) (*planner.View, error) {
	switch {
	case file != "" && from != "":
		return nil, fmt.Errorf("give --cluster or --cluster-from, not both")
	case from != "":
		client, err := api.client(from)
		if err != nil {
			return nil, err
		}
		var v planner.View
		if _, err := client.getJSON(ctx, "/view", &v); err != nil {
			return nil, err
		}
		return &v, nil
	case file != "":
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		var cf clusterFile
		if err := yaml.UnmarshalStrict(data, &cf); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		v := &planner.View{}
		for i, n := range cf.Nodes {
			cpu, err := spec.ParseQuantity(n.CPU)
			if err != nil {
				return nil, fmt.Errorf("%s: nodes[%d].cpu: %w", file, i, err)
			}
			mem, err := spec.ParseQuantity(n.Memory)
			if err != nil {
				return nil, fmt.Errorf("%s: nodes[%d].memory: %w", file, i, err)
			}
			labels := map[string]string{planner.LabelHostname: n.Name}
			for k, val := range n.Labels {
				labels[k] = val
			}
			v.Nodes = append(v.Nodes, planner.Node{Name: n.Name, Labels: labels, Alive: true,
				Allocatable: planner.Resources{MilliCPU: cpu.MilliValue(), MemoryBytes: mem.Value()}})
		}
		return v, nil
	}
	return nil, nil
}

// placements is where both revisions of a plan would run on one cluster, and what the
// new one would leave unplaced that the base placed.
type placements struct {
	after planner.Placement
	lost  []planner.LostPlacement
}

// placeBoth places both revisions on view, in a cluster with or without a pod network.
// What runs in view (with --cluster-from) keeps its place in both, as on a live cluster.
func placeBoth(before, after *spec.Set, view planner.View, podNetwork bool) *placements {
	pl := planner.New(nil).WithPodNetwork(podNetwork)
	was := pl.Plan(spec.Desired{Objects: before}, view)
	is := pl.Plan(spec.Desired{Objects: after}, view)
	return &placements{after: is, lost: planner.LostPlacements(was, is)}
}

// printPlacement shows where each replica of the new revision would run on a cluster of
// nodes nodes, and why the others would not.
func printPlacement(w io.Writer, p planner.Placement, nodes int) {
	fmt.Fprintf(w, "\nplacement on %d nodes:\n", nodes)
	byWorkload := map[string][]string{}
	for _, a := range p.Assignments {
		k := a.Namespace + "/" + a.Workload
		byWorkload[k] = append(byWorkload[k], fmt.Sprintf("%d→%s", a.Slot, a.Node))
	}
	// Consecutive slots of a workload unplaced for the same reason are one run: "0-2→unplaced (…)".
	for i := 0; i < len(p.Unplaced); {
		u := p.Unplaced[i]
		last := u.Slot + u.More
		for i++; i < len(p.Unplaced); i++ {
			next := p.Unplaced[i]
			if next.Namespace != u.Namespace || next.Workload != u.Workload || next.Slot != last+1 || next.Reason != u.Reason {
				break
			}
			last = next.Slot + next.More
		}
		slots := fmt.Sprint(u.Slot)
		if last > u.Slot {
			slots += fmt.Sprintf("-%d", last)
		}
		k := u.Namespace + "/" + u.Workload
		byWorkload[k] = append(byWorkload[k], fmt.Sprintf("%s→unplaced (%s)", slots, u.Reason))
	}
	keys := make([]string, 0, len(byWorkload))
	for k := range byWorkload {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %s: %s\n", k, strings.Join(byWorkload[k], ", "))
	}
	if len(p.Stop) > 0 {
		fmt.Fprintf(w, "  %d running instances would stop\n", len(p.Stop))
	}
}

// printLost lists the Deployments that would lose placed replicas, with the reason:
// "! Deployment/default/cache would lose 2 of 3 placed replicas: 0/3 nodes are available: …".
func printLost(w io.Writer, lost []planner.LostPlacement) {
	if len(lost) == 0 {
		return
	}
	fmt.Fprintln(w, "\nwould lose placed replicas (placed with the base revision on these nodes, not with the new one):")
	for _, l := range lost {
		fmt.Fprintf(w, "! Deployment/%s/%s would lose %d of %d placed replicas: %s\n", l.Namespace, l.Workload, l.Lost, l.Before, l.Reason)
	}
}
