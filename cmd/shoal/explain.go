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

// printPlacement shows where each replica of the new revision would run on view, in a
// cluster with or without a pod network.
func printPlacement(w io.Writer, set *spec.Set, view planner.View, podNetwork bool) {
	p := planner.New(nil).WithPodNetwork(podNetwork).Plan(spec.Desired{Objects: set}, view)
	fmt.Fprintf(w, "\nplacement on %d nodes:\n", len(view.Nodes))
	byWorkload := map[string][]string{}
	for _, a := range p.Assignments {
		k := a.Namespace + "/" + a.Workload
		byWorkload[k] = append(byWorkload[k], fmt.Sprintf("%d→%s", a.Slot, a.Node))
	}
	for _, u := range p.Unplaced {
		k := u.Namespace + "/" + u.Workload
		slots := fmt.Sprint(u.Slot)
		if u.More > 0 {
			slots += fmt.Sprintf("-%d", u.Slot+u.More)
		}
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
