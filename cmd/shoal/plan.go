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
		podNetwork               string
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

Exits 0 when nothing would change, 1 when something would (like flux diff), 2 on trouble,
including invalid manifests on either side (their findings are printed).

With --cluster FILE (or --cluster-from ADDR, an agent's address) it also shows where each
replica of the new revision would run, and why a replica could not be placed.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
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
					for _, d := range side.diags.Errors() {
						fmt.Fprintln(out, d.String())
					}
					return &exitError{code: exitTrouble, err: fmt.Errorf("%s: manifests are invalid", side.where)}
				}
			}
			fmt.Fprintf(out, "plan: %s → %s\n", before.where, after.where)
			changes := planner.Diff(before.set, after.set)
			if err := planner.FormatDiff(out, changes); err != nil {
				return &exitError{code: exitTrouble, err: err}
			}
			for _, g := range newWarnings(before.diags, after.diags).Grouped() {
				fmt.Fprintln(out, g.String())
			}
			view, err := loadClusterView(ctx, clusterFile, clusterFrom, api)
			if err != nil {
				return &exitError{code: exitTrouble, err: err}
			}
			if view != nil {
				printPlacement(out, after.set, *view, podNetwork != "off")
			}
			if len(changes) > 0 {
				return &exitError{code: exitFindings}
			}
			return nil
		},
	}
	src.register(cmd, false)
	cmd.Flags().StringVar(&from, "from", "", "base revision: branch, tag or commit (default: the source's branch head)")
	cmd.Flags().StringVar(&to, "to", "", "revision to compare with the base: branch, tag or commit")
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
