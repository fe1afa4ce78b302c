package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/shoalhq/shoal/planner"
)

func newPlanCommand() *cobra.Command {
	var (
		src      repoFlags
		from, to string
	)
	cmd := &cobra.Command{
		Use:   "plan [DIR]",
		Short: "Preview what a change would create, change or delete",
		Long: `Plan compares two sets of manifests and prints the objects that would be created,
changed (with a field-level diff) or deleted. Compare two revisions of a repository with
--repo URL --from REV --to REV, or a working directory against a revision with
DIR --repo URL [--from REV]. Secret values are never printed.

Exits 0 when nothing would change, 1 when something would (like flux diff), 2 on trouble,
including invalid manifests on either side (their findings are printed).`,
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
			if len(changes) > 0 {
				return &exitError{code: exitFindings}
			}
			return nil
		},
	}
	src.register(cmd, false)
	cmd.Flags().StringVar(&from, "from", "", "base revision: branch, tag or commit (default: the source's branch head)")
	cmd.Flags().StringVar(&to, "to", "", "revision to compare with the base: branch, tag or commit")
	return cmd
}
