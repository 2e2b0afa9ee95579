package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ternhq/tern/internal/agent"
	"github.com/ternhq/tern/internal/cluster"
	"github.com/ternhq/tern/internal/discover"
	"github.com/ternhq/tern/internal/facts"
)

// defaultDataDir is where an agent keeps its state unless told otherwise:
// $TERN_DATA, else $XDG_DATA_HOME/tern, else ~/.local/share/tern.
func defaultDataDir() string {
	if d := os.Getenv("TERN_DATA"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "tern")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "tern")
	}
	return filepath.Join(os.TempDir(), "tern")
}

func dataFlag(cmd *cobra.Command, dir *string) {
	cmd.Flags().StringVar(dir, "data", defaultDataDir(), "the agent's data directory ($TERN_DATA)")
}

func outputFlag(cmd *cobra.Command, format *string) {
	cmd.Flags().StringVarP(format, "output", "o", "table", "output format: table or json")
}

func checkFormat(format string) error {
	if format != "table" && format != "json" {
		return fmt.Errorf("-o %q: want table or json", format)
	}
	return nil
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newAgentCommand() *cobra.Command {
	var cfg agent.Config
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the agent of this device",
		Long: `Run the agent: it keeps the grid's state in an embedded NATS server (JetStream) in its data
directory, runs the processes this device owns, each in an OS process of its own, and sends their
output into the grid. The CLI talks to it through a socket in the data directory. On SIGINT or
SIGTERM it freezes its processes into images in the data directory and stops.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			cfg.Logger = slog.Default()
			return agent.Run(ctx, cfg)
		},
	}
	dataFlag(cmd, &cfg.DataDir)
	cmd.Flags().StringVar(&cfg.Name, "name", "", "this node's name in the grid (default: the host name)")
	cmd.Flags().StringVar(&cfg.Engine, "engine", "", "compiler or interpreter for this node's processes (default: compiler where wazero has one)")
	cmd.Flags().StringVar(&cfg.Listen, "listen", "", "open this agent to the grid on `HOST:PORT` (mutual TLS); the first agent of a grid also serves the grid's state on the next port")
	cmd.Flags().StringVar(&cfg.Advertise, "advertise", "", "the `HOST:PORT` other devices reach this agent at (default: --listen)")
	cmd.Flags().StringVar(&cfg.Join, "join", "", "join the grid whose hub listens on `HOST:PORT` (first start only; needs --token)")
	cmd.Flags().StringVar(&cfg.Token, "token", "", "the join token from `tern token create` on the hub")
	cmd.Flags().StringVar(&cfg.NATS, "nats", "", "keep the grid's state in the external NATS cluster at `URL` (with JetStream; credentials in the URL or --nats-creds) instead of the hub's embedded server")
	cmd.Flags().StringVar(&cfg.NATSCreds, "nats-creds", "", "NATS credentials `FILE` for --nats")
	cmd.Flags().BoolVar(&cfg.Announce, "announce", true, "with --listen on an address other devices can reach, announce this agent on the LAN by mDNS (tern nodes --discover finds it)")
	// An agent running under an emulator (qemu-user without binfmt_misc)
	// must run its processes under it too.
	cmd.Flags().StringArrayVar(&cfg.Tern, "child-command", nil, "run processes with this command instead of this executable (repeat for each word, e.g. an emulator and tern)")
	cmd.Flags().MarkHidden("child-command")
	return cmd
}

// runOnAgent starts MODULE through the agent; attached, it follows the
// output to the end and exits with the process's code.
func runOnAgent(ctx context.Context, dir, on string, attach, stdin bool, format string, env []string, path string, args []string) error {
	c := agent.NewClient(dir)
	if on != "auto" {
		nodes, err := c.Nodes(ctx)
		if err != nil {
			return err
		}
		found := false
		for _, n := range nodes {
			found = found || n.Name == on
		}
		if !found {
			return fmt.Errorf("--on %s: no such node in the grid (tern nodes lists them)", on)
		}
	}
	wasm, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read module: %w", err)
	}
	node := on
	if on == "auto" {
		node = ""
	}
	p, err := c.Run(ctx, agent.RunSpec{Module: wasm, Args: args, Env: env, Node: node, Stdin: stdin})
	if err != nil {
		return err
	}
	switch {
	case attach:
		return attachTo(ctx, c, p, format)
	case format == "json":
		return printJSON(p)
	}
	fmt.Println(p.ID)
	return nil
}

// attachTo follows a process's output to its end and, if it reads input
// from the grid, sends it this terminal's; it returns the process's exit
// code as an exitError.
func attachTo(ctx context.Context, c *agent.Client, p cluster.Proc, format string) error {
	if p.Stdin {
		go func() {
			// At stdin's end the process's input ends; an error (the
			// agent went away) leaves it open, and the output says
			// the rest.
			if err := c.Stdin(ctx, p.ID, os.Stdin); err != nil {
				fmt.Fprintf(os.Stderr, "tern: input: %v\n", err)
			}
		}()
	}
	return followToEnd(ctx, c, p.ID, format)
}

func newAttachCommand() *cobra.Command {
	var dir, format string
	cmd := &cobra.Command{
		Use:   "attach ID",
		Short: "Print a process's output and type its input, wherever it runs, until it ends",
		Long: `Attach to a process: its output (from the start) is printed as it comes, this terminal's
input goes to the process if it was run with -i (the end of this input ends the process's), and
tern exits with the process's exit code. Moves do not interrupt it. ^C detaches.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			c := agent.NewClient(dir)
			p, err := c.Proc(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return attachTo(cmd.Context(), c, p, format)
		},
	}
	dataFlag(cmd, &dir)
	outputFlag(cmd, &format)
	return cmd
}

// followToEnd copies a process's output until it stops running, and
// returns its exit code as an exitError.
func followToEnd(ctx context.Context, c *agent.Client, id, format string) error {
	if err := c.Logs(ctx, id, 1, 0, true, chunkWriter(format)); err != nil {
		return err
	}
	p, err := c.Proc(ctx, id)
	if err != nil {
		return err
	}
	switch {
	case p.State == cluster.StateFrozen:
		fmt.Fprintf(os.Stderr, "tern: %s was frozen\n", id)
	case p.ExitCode < 0:
		return fmt.Errorf("%s ended with no exit status: the agent lost it", id)
	case p.ExitCode != 0:
		return exitError{code: p.ExitCode % 256}
	}
	return nil
}

func writeChunk(ch cluster.Chunk) error {
	w := io.Writer(os.Stdout)
	if ch.Stream == "stderr" {
		w = os.Stderr
	}
	_, err := w.Write(ch.Data)
	return err
}

func newPsCommand() *cobra.Command {
	var dir, format string
	cmd := &cobra.Command{
		Use:   "ps",
		Short: "List the grid's processes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			procs, err := agent.NewClient(dir).Procs(cmd.Context())
			if err != nil {
				return err
			}
			sort.Slice(procs, func(i, j int) bool { return procs[i].Updated.After(procs[j].Updated) })
			if format == "json" {
				return printJSON(procs)
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNODE\tSTATE\tEPOCH\tMODULE\tUPDATED")
			for _, p := range procs {
				state := string(p.State)
				if p.State == cluster.StateExited {
					state = fmt.Sprintf("exited (%d)", p.ExitCode)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.12s\t%s\n", p.ID, p.Node, state, p.Epoch, p.Module, p.Updated.Local().Format(time.DateTime))
			}
			return tw.Flush()
		},
	}
	dataFlag(cmd, &dir)
	outputFlag(cmd, &format)
	return cmd
}

func newNodesCommand() *cobra.Command {
	var dir, format string
	var find bool
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "nodes",
		Short: "List the grid's live nodes (--discover: tern agents on the LAN)",
		Long: `List the grid's live nodes and their facts. With --discover, list instead the tern agents that
answer on this LAN (mDNS), of any grid, with the address to --join; no agent is needed for it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			if find {
				return discoverNodes(cmd.Context(), wait, format)
			}
			nodes, err := agent.NewClient(dir).Nodes(cmd.Context())
			if err != nil {
				return err
			}
			sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
			if format == "json" {
				return printJSON(nodes)
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tOS/ARCH\tENGINE\tADDRESS\tCORES\tMEM FREE/TOTAL\tLOAD\tBATTERY\tIDLE\tSPEED\tSEEN")
			for _, n := range nodes {
				fmt.Fprintf(tw, "%s\t%s/%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%.0f\t%s ago\n", n.Name, n.OS, n.Arch, n.Engine,
					orDash(n.Addr != "", n.Addr), n.Cores,
					orDash(n.MemTotal > 0, fmt.Sprintf("%.1f/%.1f GiB", float64(n.MemFree)/(1<<30), float64(n.MemTotal)/(1<<30))),
					orDash(n.LoadKnown, fmt.Sprintf("%.2f", n.Load1)), battery(n.Battery),
					orDash(n.IdleKnown, (time.Duration(n.IdleSeconds)*time.Second).String()), n.Speed,
					time.Since(n.Seen).Round(time.Second))
			}
			return tw.Flush()
		},
	}
	dataFlag(cmd, &dir)
	outputFlag(cmd, &format)
	cmd.Flags().BoolVar(&find, "discover", false, "list the tern agents on this LAN (mDNS) instead")
	cmd.Flags().DurationVar(&wait, "wait", discover.DefaultWait, "with --discover: how long to listen for answers")
	cmd.AddCommand(newNodesRemoveCommand())
	return cmd
}

// discoverNodes lists the agents that answer on the LAN.
func discoverNodes(ctx context.Context, wait time.Duration, format string) error {
	if ctx == nil {
		ctx = context.Background()
	}
	found, err := discover.Browse(ctx, wait)
	if err != nil {
		return err
	}
	if format == "json" {
		if found == nil {
			found = []discover.Announcement{}
		}
		return printJSON(found)
	}
	if len(found) == 0 {
		fmt.Fprintf(os.Stderr, "no tern agent answered on this LAN within %v\n", wait)
		return nil
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GRID\tNODE\tADDRESS\tROLE")
	for _, a := range found {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.Grid, a.Node, a.Addr, orDash(a.Hub, "hub: join here with a token"))
	}
	return tw.Flush()
}

func newNodesRemoveCommand() *cobra.Command {
	var dir, format string
	cmd := &cobra.Command{
		Use:   "remove NODE",
		Short: "Remove a device from the grid: its certificates are revoked",
		Long: `Remove a device from the grid. Every certificate the grid issued to it is revoked: no agent,
and not the grid's NATS server, accepts it any more, its open connections are closed, and its
agent stops. The processes it ran are recorded as lost. To let the device in again, give it a
new token (and remove the pki directory of its data directory first).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			rm, err := agent.NewClient(dir).RemoveNode(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if format == "json" {
				return printJSON(rm)
			}
			fmt.Printf("removed %s: %d certificate(s) revoked\n", rm.Node, len(rm.Revoked))
			return nil
		},
	}
	dataFlag(cmd, &dir)
	outputFlag(cmd, &format)
	return cmd
}

// chunkWriter prints output chunks: as the process wrote them (table), or
// as JSON lines (sequence, stream, epoch, data).
func chunkWriter(format string) func(cluster.Chunk) error {
	if format != "json" {
		return writeChunk
	}
	enc := json.NewEncoder(os.Stdout)
	return func(ch cluster.Chunk) error { return enc.Encode(ch) }
}

func newLogsCommand() *cobra.Command {
	var dir, format string
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs [-f] ID",
		Short: "Print a process's output (stdout and stderr), wherever it runs",
		Long: `Print a process's output from the grid. With -o json each piece is a JSON line with its
sequence number, stream (stdout or stderr), owner epoch and data (base64).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			return agent.NewClient(dir).Logs(cmd.Context(), args[0], 1, 0, follow, chunkWriter(format))
		},
	}
	dataFlag(cmd, &dir)
	outputFlag(cmd, &format)
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing until the process stops running")
	return cmd
}

func newKillCommand() *cobra.Command {
	var dir, format string
	cmd := &cobra.Command{
		Use:   "kill ID",
		Short: "End a process",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			p, err := agent.NewClient(dir).Kill(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if format == "json" {
				return printJSON(p)
			}
			fmt.Printf("%s %s (%d)\n", p.ID, p.State, p.ExitCode)
			return nil
		},
	}
	dataFlag(cmd, &dir)
	outputFlag(cmd, &format)
	return cmd
}

// errAgentFlags: flags of a local run that a run through the agent does
// not take yet (the agent owns engines, caches and checkpoints).
var errAgentFlags = errors.New("not for a run through the agent (--on)")

func newMigrateCommand() *cobra.Command {
	var dir, format string
	cmd := &cobra.Command{
		Use:   "migrate ID NODE",
		Short: "Move a running process to another node, live",
		Long: `Move a running process to NODE while it runs: its memory is copied while it keeps running,
then it is frozen for the last changes and goes on on NODE. Its output continues in the grid
(tern logs -f follows it). A move that fails leaves it running where it was.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			st, _ := os.Stderr.Stat()
			tty := st != nil && st.Mode()&os.ModeCharDevice != 0
			bar := func(p agent.Progress) {
				if format == "table" && tty {
					fmt.Fprintf(os.Stderr, "\r%-6s round %-2d  %d pages  %.1f MiB sent", p.Event, p.Round, p.Pages, float64(p.Bytes)/(1<<20))
				}
			}
			res, err := agent.NewClient(dir).Migrate(cmd.Context(), args[0], args[1], bar)
			if format == "table" && tty {
				fmt.Fprintln(os.Stderr)
			}
			if err != nil {
				return err
			}
			if format == "json" {
				return printJSON(res)
			}
			fmt.Printf("%s moved to %s (epoch %d): %.1f MiB sent (%d pages it held named, not sent), down %.1f ms (%.1f ms to freeze), %.0f ms in all\n",
				args[0], res.Node, res.Epoch, float64(res.Bytes)/(1<<20), res.Named, res.Millis.Downtime, res.Millis.Halt, res.Millis.Total)
			return nil
		},
	}
	dataFlag(cmd, &dir)
	outputFlag(cmd, &format)
	return cmd
}

func newTokenCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Manage join tokens"}
	var dir, format string
	var ttl time.Duration
	create := &cobra.Command{
		Use:   "create",
		Short: "Make a single-use token another device joins the grid with (on the hub)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			t, err := agent.NewClient(dir).CreateToken(cmd.Context(), ttl)
			if err != nil {
				return err
			}
			if format == "json" {
				return printJSON(t)
			}
			fmt.Println(t.Token)
			fmt.Fprintf(os.Stderr, "join with: tern agent --listen HOST:PORT --join %s --token %s\n(valid until %s, once)\n", t.Join, t.Token, t.Expires.Local().Format(time.DateTime))
			return nil
		},
	}
	dataFlag(create, &dir)
	outputFlag(create, &format)
	create.Flags().DurationVar(&ttl, "ttl", 15*time.Minute, "how long the token stays valid")
	cmd.AddCommand(create)
	return cmd
}

func newCheckpointCommand() *cobra.Command {
	var dir, format, save string
	cmd := &cobra.Command{
		Use:   "checkpoint ID",
		Short: "Store an image of a running process in the grid; it goes on running",
		Long: `Take an image of a running process, wherever it runs, and store it in the grid's image store
(the latest one per process). The process is halted only while its memory is copied. With
--save FILE the stored image is also written to FILE, its module beside it, for 'tern resume'.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			c := agent.NewClient(dir)
			info, err := c.Checkpoint(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if save != "" {
				if _, err := c.SaveCheckpoint(cmd.Context(), args[0], save); err != nil {
					return err
				}
			}
			if format == "json" {
				return printJSON(info)
			}
			fmt.Printf("%s: checkpoint of %.1f MiB at epoch %d (%s)\n", info.ID, float64(info.Size)/(1<<20), info.Epoch, info.Digest)
			if save != "" {
				fmt.Printf("saved to %s\n", save)
			}
			return nil
		},
	}
	dataFlag(cmd, &dir)
	outputFlag(cmd, &format)
	cmd.Flags().StringVar(&save, "save", "", "also write the image to `FILE` (the module beside it), for tern resume")
	return cmd
}

// orDash is s, or "-" for a fact the device could not report.
func orDash(known bool, s string) string {
	if !known {
		return "-"
	}
	return s
}

func battery(b *facts.Battery) string {
	switch {
	case b == nil:
		return "none"
	case b.Charging:
		return fmt.Sprintf("%.0f%% charging", b.Percent)
	case b.OnAC:
		return fmt.Sprintf("%.0f%% on AC", b.Percent)
	}
	return fmt.Sprintf("%.0f%%", b.Percent)
}
