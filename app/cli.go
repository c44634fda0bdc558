package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/soarkafka/soarkafka/integrations"
	"github.com/soarkafka/soarkafka/parsers"
	"github.com/soarkafka/soarkafka/parsers/sandbox"
	"github.com/soarkafka/soarkafka/soar"
	"github.com/soarkafka/soarkafka/store"
)

// version is set at build time: -ldflags "-X github.com/soarkafka/soarkafka/app.version=1.2.3".
var version = ""

// Version returns the build's version: the linker-set one, else the
// module version Go recorded, else "dev".
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// NewCommand returns the soarkafka command line. env is the process
// environment (os.Environ()); out and errOut are where commands print.
func NewCommand(env []string, out, errOut io.Writer) *cobra.Command {
	var configFile string
	root := &cobra.Command{
		Use:           "soarkafka",
		Short:         "Connects SOAR platforms to Apache Kafka",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(out)
	root.SetErr(errOut)
	root.PersistentFlags().StringVar(&configFile, "config", "", "YAML configuration file")

	serve := &cobra.Command{
		Use:   "serve",
		Short: "Run the server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := LoadConfig(configFile, cmd.Flags(), env)
			if err != nil {
				return err
			}
			logger := NewLogger(cfg, errOut)
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			s, err := NewServer(ctx, cfg, logger)
			if err != nil {
				return err
			}
			return s.Run(ctx)
		},
	}
	addFlags(serve.Flags())

	migrate := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the database migrations and exit",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := LoadConfig(configFile, cmd.Flags(), env)
			if err != nil {
				return err
			}
			logger := NewLogger(cfg, errOut)
			db, err := store.Open(cmd.Context(), cfg.DatabaseURL, logger)
			if err != nil {
				return fmt.Errorf("database_url: %w", err)
			}
			defer db.Close()
			if err := db.Migrate(cmd.Context()); err != nil {
				return fmt.Errorf("migrate database: %w", err)
			}
			fmt.Fprintf(out, "database %s is up to date\n", redactDatabaseURL(cfg.DatabaseURL))
			return nil
		},
	}
	addFlags(migrate.Flags())

	// The sandbox's worker: the server starts the binary with this hidden
	// subcommand to compile and run user parsers in a process of their own.
	// It must do nothing before sandbox.WorkerMain: no config, no logs.
	worker := &cobra.Command{
		Use:    "parser-worker",
		Short:  "Run parser scripts for a soarkafka server (internal)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if code := sandbox.WorkerMain(os.Stdin, os.Stdout, os.Stderr); code != 0 {
				return fmt.Errorf("parser worker exited with %d", code)
			}
			return nil
		},
	}

	root.AddCommand(serve, migrate, worker, parserCommand(out, errOut), integrationsCommand(out), healthcheckCommand(&configFile, env, out), &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(out, "soarkafka", Version())
		},
	})
	return root
}

// Main runs the command line and returns the process exit code.
func Main(ctx context.Context, args, env []string, out, errOut io.Writer) int {
	cmd := NewCommand(env, out, errOut)
	cmd.SetArgs(args)
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(errOut, "soarkafka:", err)
		return 1
	}
	return 0
}

// NewLogger returns the server's logger as configured.
func NewLogger(cfg Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// parserCommand is `soarkafka parser test`: run a parser file on messages
// in a terminal or in the author's CI, through the same sandbox as the
// server, and print what it would create.
func parserCommand(out, errOut io.Writer) *cobra.Command {
	var file, messages, topic string
	test := &cobra.Command{
		Use:   "test",
		Short: "Run a parser on an NDJSON file of messages (one message value a line) and print its containers and artifacts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			src, err := os.ReadFile(file)
			if err != nil {
				return fmt.Errorf("--file: %w", err)
			}
			msgs, err := readMessages(messages, topic)
			if err != nil {
				return fmt.Errorf("--messages: %w", err)
			}
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			engine := parsers.NewEngine(sandbox.PoolConfig{Worker: sandbox.Config{Exe: exe, Args: []string{"parser-worker"}}})
			defer engine.Close()
			res, err := parsers.NewService(nil, engine).Test(cmd.Context(), parsers.TestInput{
				Name: filepath.Base(file), Source: string(src), Topic: topic, Messages: msgs})
			if err != nil {
				return err
			}
			enc := json.NewEncoder(out)
			enc.SetIndent("", "  ")
			if err := enc.Encode(res); err != nil {
				return err
			}
			if res.Error != nil {
				return fmt.Errorf("parser %s failed: %s", file, res.Error.Message)
			}
			return nil
		},
	}
	test.Flags().StringVar(&file, "file", "", "the parser's Go source file")
	test.Flags().StringVar(&messages, "messages", "", "NDJSON file: each line is one message value")
	test.Flags().StringVar(&topic, "topic", "sample", "topic name the parser is given")
	_ = test.MarkFlagRequired("file")
	_ = test.MarkFlagRequired("messages")
	cmd := &cobra.Command{Use: "parser", Short: "Work with parse_messages parsers"}
	cmd.AddCommand(test)
	return cmd
}

// integrationsCommand is `soarkafka integrations build`: write the
// installable packages of the platform apps, as the server also serves
// them (GET /v1/integrations/...).
func integrationsCommand(out io.Writer) *cobra.Command {
	var dir string
	build := &cobra.Command{
		Use:   "build",
		Short: "Write the Splunk SOAR app (" + integrations.SplunkSOARFileName("<version>") + ") and the Cortex XSOAR integration (" + integrations.XSOARFileName + ") into --out",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("--out: %w", err)
			}
			// Each package is written on its own: one that cannot be built
			// does not keep the other from being written.
			var errs []error
			write := func(name string, build func(io.Writer) error) {
				var buf bytes.Buffer
				if err := build(&buf); err != nil {
					errs = append(errs, err)
					return
				}
				path := filepath.Join(dir, name)
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					errs = append(errs, fmt.Errorf("--out: %w", err))
					return
				}
				fmt.Fprintln(out, path)
			}
			version := Version()
			write(integrations.SplunkSOARFileName(version), func(w io.Writer) error { return integrations.SplunkSOARPackage(w, version) })
			write(integrations.XSOARFileName, integrations.XSOARIntegration)
			return errors.Join(errs...)
		},
	}
	build.Flags().StringVar(&dir, "out", ".", "folder to write the packages into (created when missing)")
	cmd := &cobra.Command{Use: "integrations", Short: "Build the SOAR platforms' apps that drive soarkafka"}
	cmd.AddCommand(build)
	return cmd
}

// readMessages reads a file of message values, one a line (blank lines
// skipped), as messages of partition 0 at offsets 0, 1, 2...
func readMessages(path, topic string) ([]soar.Message, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var msgs []soar.Message
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		msgs = append(msgs, soar.Message{Topic: topic, Offset: int64(len(msgs)), Value: []byte(line), Message: line, Timestamp: time.Now().UTC()})
	}
	if len(msgs) == 0 {
		return nil, fmt.Errorf("%s holds no message", path)
	}
	return msgs, nil
}
