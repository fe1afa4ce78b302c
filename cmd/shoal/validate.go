package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/shoalhq/shoal/spec"
)

func newValidateCommand() *cobra.Command {
	var (
		src                      repoFlags
		output                   string
		clusterFile, clusterFrom string
		api                      apiClientFlags
	)
	cmd := &cobra.Command{
		Use:   "validate [DIR]",
		Short: "Check manifests in a directory or at a Git revision",
		Long: `Validate decodes and checks every *.yaml/*.yml manifest under DIR, or under the
repository's sub-path at --rev when --repo is given. It prints each finding as
"file:line: field.path: message" and exits 0 when the manifests are valid (warnings allowed),
1 when they are not, and 2 when they could not be read.

With --cluster FILE (nodes: [{name, labels}]) or --cluster-from ADDR (an agent's API
address, whose view of the members and their labels is used), it also warns about each
nodeSelector label or required node affinity that no node carries.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return &exitError{code: exitTrouble, err: fmt.Errorf("-o: want text or json, got %q", output)}
			}
			loaded, err := loadManifests(cmd.Context(), args, src, src.rev)
			if err != nil {
				return &exitError{code: exitTrouble, err: err}
			}
			view, err := loadClusterView(cmd.Context(), clusterFile, clusterFrom, api)
			if err != nil {
				return &exitError{code: exitTrouble, err: err}
			}
			if view != nil && loaded.set != nil {
				loaded.diags = append(loaded.diags, clusterLabelFindings(loaded.set, *view)...)
			}
			if err := reportValidation(cmd.OutOrStdout(), cmd.ErrOrStderr(), output, loaded); err != nil {
				return &exitError{code: exitTrouble, err: err}
			}
			if loaded.diags.HasErrors() {
				return &exitError{code: exitFindings}
			}
			return nil
		},
	}
	src.register(cmd, true)
	cmd.Flags().StringVar(&src.rev, "rev", "", "revision to validate with --repo: what git rev-parse reads for a local repository (HEAD~1, a tag, a short SHA), a branch, tag or full SHA for a remote (default: HEAD, or the remote's default branch)")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.Flags().StringVar(&clusterFile, "cluster", "", "also warn about node labels that no node of this YAML file carries (nodes: [{name, labels}])")
	cmd.Flags().StringVar(&clusterFrom, "cluster-from", "", "also warn about node labels that no member of the cluster carries, as the agent at this address sees it")
	api.register(cmd.Flags()) // for --cluster-from
	return cmd
}

// validationReport is the `-o json` document of `shoal validate`.
type validationReport struct {
	Valid    bool             `json:"valid"`
	Revision *spec.Revision   `json:"revision,omitempty"`
	Objects  int              `json:"objects"`
	Errors   spec.Diagnostics `json:"errors"`
	Warnings spec.Diagnostics `json:"warnings"`
}

func reportValidation(w, summary io.Writer, output string, loaded manifests) error {
	report := validationReport{
		Valid:    !loaded.diags.HasErrors(),
		Revision: loaded.revision,
		Errors:   nonNil(loaded.diags.Errors()),
		Warnings: nonNil(loaded.diags.Warnings()),
	}
	if loaded.set != nil {
		report.Objects = len(loaded.set.Objects())
	}
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(report)
	}
	// People read repeated warnings as one line each; -o json keeps every one.
	for _, g := range loaded.diags.Grouped() {
		fmt.Fprintln(w, g.String())
	}
	verdict := "valid"
	if !report.Valid {
		verdict = "invalid"
	}
	fmt.Fprintf(summary, "%s: %s, %d objects, %d errors, %d warnings\n",
		loaded.where, verdict, report.Objects, len(report.Errors), len(report.Warnings))
	return nil
}

func nonNil(ds spec.Diagnostics) spec.Diagnostics {
	if ds == nil {
		return spec.Diagnostics{}
	}
	return ds
}
