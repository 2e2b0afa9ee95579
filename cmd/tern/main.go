// Command tern runs WebAssembly (WASI preview1) programs as processes that
// tern can later freeze and move between devices.
package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/ternhq/tern/internal/process"
)

// Exit statuses of tern itself, chosen outside the range guests commonly
// use: 125 as container runtimes do for "the runtime failed", 134 (128 +
// SIGABRT) for a guest trap as other WebAssembly runtimes do.
const (
	exitTernError = 125
	exitTrap      = 134
)

// exitError carries a guest's exit code out of a command.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	root := newRootCommand()
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var exit exitError
	if errors.As(err, &exit) {
		return exit.code
	}
	var trap *process.TrapError
	if errors.As(err, &trap) {
		fmt.Fprintf(os.Stderr, "tern: trap: %s\n", trap.Message)
		if trap.Stack != "" {
			fmt.Fprintf(os.Stderr, "wasm stack trace:\n%s\n", trap.Stack)
		}
		return exitTrap
	}
	fmt.Fprintf(os.Stderr, "tern: %v\n", err)
	return exitTernError
}

func newRootCommand() *cobra.Command {
	var logLevel string
	root := &cobra.Command{
		Use:           "tern",
		Short:         "Run WebAssembly processes that can be frozen and moved between devices",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})))
			return nil
		},
	}
	root.PersistentFlags().StringVar(&logLevel, "log-level", "warn", "log level: debug, info, warn or error")
	root.AddCommand(newMigrateCommand(), newTokenCommand(), newCheckpointCommand(), newAttachCommand(), newRunCommand(), newResumeCommand(), newInspectCommand(), newPrepareCommand(),
		newAgentCommand(), newPsCommand(), newNodesCommand(), newLogsCommand(), newKillCommand())
	return root
}
