package main

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth/berth/schemas"
	"github.com/berth/berth/schemas/report"
)

func newValidateCmd() *cobra.Command {
	var format string
	var maxFileBytes int64
	cmd := &cobra.Command{
		Use:   "validate [PATH...]",
		Short: "Check a config repository against berth's schemas, as the masters will",
		Long: `validate loads every YAML, JSON and CUE spec below each PATH (default ".")
with the same schemas and loader the masters use, and reports every problem at
its file, line and column. Every file of a directory is read through a gate
rooted at it: a symlink that leads outside is an error at the link. A
directory without objects is an error unless its berth.yaml sets
allowEmpty: true (applying it would remove every object from the cluster).

Exit status: 0 when valid (warnings allowed), 1 when any error was found,
2 for usage errors or paths that cannot be read.`,
		Example: `  berth validate
  berth validate --format github ./clusters/prod
  berth validate --format sarif . > berth.sarif`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !slices.Contains(report.Formats, format) {
				return &exitError{2, fmt.Errorf("unknown --format %q (want one of %s)", format, strings.Join(report.Formats, ", "))}
			}
			if len(args) == 0 {
				args = []string{"."}
			}
			for _, p := range args {
				if _, err := os.Stat(p); err != nil {
					return &exitError{2, fmt.Errorf("cannot read %s: %v", p, err)}
				}
			}
			res := schemas.Load(args, schemas.WithMaxFileBytes(maxFileBytes))
			if err := report.Write(cmd.OutOrStdout(), format, res, version); err != nil {
				return &exitError{2, err}
			}
			if res.Errors() > 0 {
				return &exitError{1, nil}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "text", "output format: "+strings.Join(report.Formats, ", "))
	cmd.Flags().Int64Var(&maxFileBytes, "max-file-bytes", schemas.DefaultMaxFileBytes, "refuse files larger than this")
	return cmd
}
