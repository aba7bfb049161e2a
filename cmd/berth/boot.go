package main

import (
	"errors"
	"os"

	"github.com/spf13/cobra"

	"github.com/berth/berth/appliance/boot"
)

// The appliance image's /init is this binary; the kernel runs it as PID 1
// with no arguments, which means `berth boot`.
func init() {
	if os.Getpid() == 1 && len(os.Args) == 1 {
		os.Args = append(os.Args, "boot")
	}
}

func newBootCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "boot",
		Short:  "Run as the appliance image's init (PID 1)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// It mounts, formats disks and reboots: never on a host by mistake.
			if os.Getpid() != 1 {
				return &exitError{code: 2, err: errors.New("berth boot is the appliance image's init; it runs only as PID 1")}
			}
			return boot.Run(version)
		},
	}
}
