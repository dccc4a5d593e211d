package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/stokehq/stoke/internal/config"
	"github.com/stokehq/stoke/internal/server"
)

func serveCmd(g *globals) *cobra.Command {
	var quiet bool
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run Stoke: the gateway, the admin API and the functions in stoke.yaml",
		Long: `Serve builds and starts the functions configured in stoke.yaml (see -f), then
serves HTTP requests on 'listen' (default 127.0.0.1:8080) and the admin API on
'admin.listen' (default 127.0.0.1:8081). Instances start on demand (cold starts),
keep_warm instances start now. The functions' logs (START/END/REPORT lines and
the apps' output) are echoed to stderr unless --quiet.

SIGINT or SIGTERM stops taking requests, lets requests in flight finish, stops
every instance and removes its cgroup. A client is answered whole or refused at
connect: connections the kernel already took are served, new ones get no answer
to their SYN and find the port closed. Records and logs stay in data_dir, and a
restart on the same data_dir keeps them.`,
		Example: `  stoke serve -f examples/stoke.yaml
  curl localhost:8080/hello`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SilenceUsage = true
			yaml, err := os.ReadFile(g.file)
			if err != nil {
				return fileError(g.file, err)
			}
			cfg, err := config.Parse(g.file, yaml)
			if err != nil {
				return errors.New("the config has errors; nothing was started:\n" + err.Error())
			}
			for _, w := range cfg.Warnings {
				fmt.Fprintln(os.Stderr, "warning:", w)
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: g.level()}))
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			srv, err := server.Start(ctx, cfg, yaml, server.Options{Logger: log, Out: os.Stderr, EchoLogs: !quiet})
			if err != nil {
				return err
			}
			<-ctx.Done()
			stop() // a second signal kills at once
			log.Info("shutting down: draining requests in flight")
			if err := srv.Close(context.Background()); err != nil {
				return err
			}
			log.Info("stopped")
			return nil
		},
	}
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "do not echo the functions' logs to stderr")
	return c
}
