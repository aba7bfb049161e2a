package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/berth/berth/appliance/api"
)

func newExecCmd() *cobra.Command {
	var (
		namespace string
		o         api.ExecOptions
	)
	cmd := &cobra.Command{
		Use:   "exec [NAMESPACE/]POD [-c CONTAINER] [-i] [-t] -- COMMAND [ARG...]",
		Short: "Run a command in a pod's container",
		Long: `Run a command in a running container, as kubectl exec does: the master
relays it to the pod's node. -i sends this terminal's input, -t runs the
command on a terminal (raw mode here, window size changes sent along).
berth exits with the command's exit code. Admin tokens only.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 1 || len(args) < 2 {
				return errors.New("want the pod, then -- and the command: berth exec POD -- COMMAND [ARG...]")
			}
			return nil
		},
	}
	client := clientFlag(cmd)
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "default", "the pod's namespace")
	cmd.Flags().StringVarP(&o.Container, "container", "c", "", "container (default: the pod's only one)")
	cmd.Flags().BoolVarP(&o.Stdin, "stdin", "i", false, "send standard input to the command")
	cmd.Flags().BoolVarP(&o.TTY, "tty", "t", false, "run the command on a terminal")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := client()
		if err != nil {
			return err
		}
		pod := args[0]
		if ns, name, ok := strings.Cut(pod, "/"); ok {
			namespace, pod = ns, name
		}
		o.Command = args[1:]
		s := api.ExecStreams{Stdin: cmd.InOrStdin(), Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr()}
		if o.TTY {
			restore, resize, err := rawTerminal(cmd.InOrStdin(), cmd.OutOrStdout())
			if err != nil {
				// As kubectl: a command asked for a terminal runs on
				// without one when this side has none.
				fmt.Fprintf(cmd.ErrOrStderr(), "berth: no TTY: %v\n", err)
				o.TTY = false
			} else {
				defer restore()
				s.Resize = resize
			}
		}
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		code, err := c.Exec(ctx, namespace, pod, o, s)
		if err != nil {
			return &exitError{1, err}
		}
		if code != 0 {
			return &exitError{code: code}
		}
		return nil
	}
	return cmd
}

// rawTerminal puts the terminal on in into raw mode, so that keys (^C
// too) go to the remote command as typed, and sends the size of the
// terminal on out now and on each SIGWINCH. restore undoes it all.
func rawTerminal(in io.Reader, out io.Writer) (restore func(), _ <-chan api.TermSize, _ error) {
	inf, ok := in.(*os.File)
	if !ok || !term.IsTerminal(int(inf.Fd())) {
		return nil, nil, errors.New("standard input is not a terminal")
	}
	size := func() (api.TermSize, bool) {
		for _, f := range []any{out, in} {
			if f, ok := f.(*os.File); ok {
				if w, h, err := term.GetSize(int(f.Fd())); err == nil {
					return api.TermSize{Width: uint16(w), Height: uint16(h)}, true
				}
			}
		}
		return api.TermSize{}, false
	}
	old, err := term.MakeRaw(int(inf.Fd()))
	if err != nil {
		return nil, nil, err
	}
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	resize := make(chan api.TermSize, 1)
	done := make(chan struct{})
	go func() {
		defer close(resize)
		for {
			if sz, ok := size(); ok {
				select {
				case resize <- sz:
				case <-done:
					return
				}
			}
			select {
			case <-winch:
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(winch)
		close(done)
		_ = term.Restore(int(inf.Fd()), old)
	}, resize, nil
}
