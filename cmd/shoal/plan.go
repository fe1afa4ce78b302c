package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/shoalhq/shoal/planner"
	"github.com/shoalhq/shoal/spec"
)

func newPlanCommand() *cobra.Command {
	var (
		src                      repoFlags
		from, to                 string
		clusterFile, clusterFrom string
		podNetwork, output       string
		api                      apiClientFlags
	)
	cmd := &cobra.Command{
		Use:   "plan [DIR]",
		Short: "Preview what a change would create, change or delete",
		Long: `Plan compares two sets of manifests and prints the objects that would be created,
changed (with a field-level diff) or deleted. Compare two revisions of a repository with
--repo URL --from REV --to REV, or a working directory against a revision with
DIR --repo URL [--from REV]. Secret values are never printed, nor a Secret's annotations
and labels (kubectl copies the whole Secret into one).

It also prints the warnings the change brings: those of the new manifests that the
base did not have (a Service that selects nothing, a targetPort no container has).

Exits 0 when nothing would change, 1 when something would (like flux diff) or when a
workload would lose placed replicas (see --cluster), 2 on trouble, including invalid
manifests on either side (their findings are printed).

A ConfigMap or Secret change lists the Deployments that use it and whose instances it
replaces ("→ replaces Deployment/default/web (3 instances)"), and such a Deployment is
shown as an update naming the config ("(config: ConfigMap/app-config)") even when its own
manifest did not change.

A local repository (a path, relative ones too, or file://; any directory inside its work
tree) is read where it is, and REV is anything git rev-parse reads: HEAD, HEAD~1, HEAD^,
a branch, origin/main, a tag, a full or short SHA. A remote one is cloned under --state-dir
and asked for branches, tags and full SHAs only.

With --cluster FILE (or --cluster-from ADDR, an agent's address) it also shows where each
replica of the new revision would run, and why a replica could not be placed: which port
or resource the nodes lack and which workloads hold it. It places the base revision on the
same cluster too, and lists every Deployment that would lose placed replicas, its manifest
changed or not ("! Deployment/default/cache would lose 2 of 3 placed replicas: …"): another
workload may take the port, cpu or memory it runs on.

-o json prints {from, to, changes, summary, warnings} for tools, and lostPlacements with
--cluster or --cluster-from.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return &exitError{code: exitTrouble, err: fmt.Errorf("-o: want text or json, got %q", output)}
			}
			if src.url == "" {
				return &exitError{code: exitTrouble, err: fmt.Errorf("plan needs --repo (and --to REV, or a DIR to compare against --from)")}
			}
			if len(args) == 0 && to == "" {
				return &exitError{code: exitTrouble, err: fmt.Errorf("plan needs --to REV or a working directory DIR")}
			}
			if len(args) == 1 && to != "" {
				return &exitError{code: exitTrouble, err: fmt.Errorf("give either DIR or --to, not both")}
			}
			ctx := cmd.Context()
			before, err := loadManifests(ctx, nil, src, from)
			if err != nil {
				return &exitError{code: exitTrouble, err: err}
			}
			after, err := loadManifests(ctx, args, src, to)
			if err != nil {
				return &exitError{code: exitTrouble, err: err}
			}
			out := cmd.OutOrStdout()
			for _, side := range []manifests{before, after} {
				if side.diags.HasErrors() {
					if output == "json" {
						// The exit status says it failed whether or not the document could be written.
						_ = writeJSON(out, planReport{From: planSideOf(before), To: planSideOf(after),
							Changes: []planChange{}, Warnings: spec.Diagnostics{}, Errors: side.diags.Errors()})
					} else {
						for _, d := range side.diags.Errors() {
							fmt.Fprintln(out, d.String())
						}
					}
					return &exitError{code: exitTrouble, err: fmt.Errorf("%s: manifests are invalid", side.where)}
				}
			}
			changes := planner.Diff(before.set, after.set)
			view, err := loadClusterView(ctx, clusterFile, clusterFrom, api)
			if err != nil {
				return &exitError{code: exitTrouble, err: err}
			}
			var placed *placements
			if view != nil {
				placed = placeBoth(before.set, after.set, *view, podNetwork != "off")
			}
			changed := len(changes) > 0 || placed != nil && len(placed.lost) > 0
			if output == "json" {
				if err := writeJSON(out, newPlanReport(before, after, changes, newWarnings(before.diags, after.diags), placed)); err != nil {
					return &exitError{code: exitTrouble, err: err}
				}
			} else {
				fmt.Fprintf(out, "plan: %s → %s\n", before.where, after.where)
				if err := planner.FormatDiff(out, changes); err != nil {
					return &exitError{code: exitTrouble, err: err}
				}
				for _, g := range newWarnings(before.diags, after.diags).Grouped() {
					fmt.Fprintln(out, g.String())
				}
				if placed != nil {
					printPlacement(out, placed.after, len(view.Nodes))
					printLost(out, placed.lost)
				}
			}
			if changed {
				return &exitError{code: exitFindings}
			}
			return nil
		},
	}
	src.register(cmd, false)
	cmd.Flags().StringVar(&from, "from", "", "base revision, as git rev-parse reads it for a local repository (default: HEAD, or a remote's default branch)")
	cmd.Flags().StringVar(&to, "to", "", "revision to compare with the base (HEAD, HEAD~1, main, v1.2, a short SHA, …)")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.Flags().StringVar(&clusterFile, "cluster", "", "also show where each replica would run on the nodes of this YAML file (nodes: [{name, labels, cpu, memory}])")
	cmd.Flags().StringVar(&clusterFrom, "cluster-from", "", "also show where each replica would run on the cluster as the agent at this address sees it")
	cmd.Flags().StringVar(&podNetwork, "pod-network", "on", `as the agents' --pod-network: "off" makes every container port a node resource`)
	api.register(cmd.Flags()) // for --cluster-from
	return cmd
}

// newWarnings returns the warnings of after that before does not have: the same
// finding in the same file and field is not new when only its line moved.
func newWarnings(before, after spec.Diagnostics) spec.Diagnostics {
	type finding struct{ file, path, message string }
	had := map[finding]bool{}
	for _, d := range before.Warnings() {
		had[finding{d.File, d.Path, d.Message}] = true
	}
	var out spec.Diagnostics
	for _, d := range after.Warnings() {
		if !had[finding{d.File, d.Path, d.Message}] {
			out = append(out, d)
		}
	}
	return out
}
