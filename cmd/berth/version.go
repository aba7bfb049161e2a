package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

// versionTimeout bounds the wait for the server's version: without a
// master, `berth version` still answers for the client, promptly.
const versionTimeout = 5 * time.Second

func newVersionCmd() *cobra.Command {
	var clientOnly bool
	cmd := &cobra.Command{
		Use:   "version [--client]",
		Short: "Print the client's version and, when a master answers, the server's",
		Args:  cobra.NoArgs,
	}
	cmd.Flags().BoolVar(&clientOnly, "client", false, "the client's version only; ask no master")
	client := clientFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		out := cmd.OutOrStdout()
		fmt.Fprintln(out, "Client Version:", version)
		if clientOnly {
			return nil
		}
		c, err := client()
		if err != nil {
			// No config, no server to ask: the client's version is the
			// answer.
			fmt.Fprintln(cmd.ErrOrStderr(), "no server version:", err)
			return nil
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), versionTimeout)
		defer cancel()
		v, err := c.ServerVersion(ctx)
		if err != nil {
			// As kubectl version: the client's answer stands, the server's
			// absence is said, and the exit status says it too.
			fmt.Fprintln(out, "Server Version: unknown")
			return &exitError{1, fmt.Errorf("server version: %w", err)}
		}
		fmt.Fprintln(out, "Server Version:", v.Version)
		return nil
	}
	return cmd
}
