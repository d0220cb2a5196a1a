package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/commons-energy/commons/share"
	"github.com/commons-energy/commons/share/node"
	"github.com/commons-energy/commons/share/peer"
)

func newDaemonCmd(g *globalFlags) *cobra.Command {
	var listen, logFormat, logLevel string
	cmd := &cobra.Command{
		Use:   "daemon [--listen ADDR] [--log-format text|json] [--log-level LEVEL]",
		Short: "Run the household headless: meter, ledger, neighbours",
		Long: `Runs the household without a screen: reads the meter, writes its aggregates to the
ledger in batches, settles pledges whose window has closed, and exchanges signed
messages with the neighbours directly (mutual TLS, pinned by household id) on the
config's listen address. Logs go to stderr. SIGTERM or SIGINT stop it cleanly.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(cmd.ErrOrStderr(), logFormat, logLevel)
			if err != nil {
				return err
			}
			h, err := g.resolveHome()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return runDaemon(ctx, h, listen, cmd.Flags().Changed("listen"), log)
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "", "address where neighbours reach this box (default: the config's listen)")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	return cmd
}

// newLogger builds the daemon's slog logger on w.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, failf(exitUsage, "--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, failf(exitUsage, "--log-format %q: use text or json", format)
}

// syncerTransport forwards the node's new messages to the peer syncer,
// which is created once the node (and its ledger) is open.
type syncerTransport struct{ s atomic.Pointer[peer.Syncer] }

func (t *syncerTransport) Publish(raw ...[]byte) {
	if s := t.s.Load(); s != nil {
		s.Publish(raw...)
	}
}

func (t *syncerTransport) PublishStatus(raw []byte) {
	if s := t.s.Load(); s != nil {
		s.PublishStatus(raw)
	}
}

// runDaemon runs the household in h until ctx is done.
func runDaemon(ctx context.Context, h node.Home, listen string, listenSet bool, log *slog.Logger) error {
	tr := &syncerTransport{}
	n, err := node.Open(ctx, h, node.Options{Owner: "commons daemon", Logger: log, Transport: tr})
	if err != nil {
		return nodeErr(err)
	}
	defer func() {
		if err := n.Close(); err != nil {
			log.Error("closing the household", "err", err)
		}
	}()
	if !listenSet {
		listen = n.Config().Listen
	}
	if listen == "" {
		return failf(exitUsage, "no listen address: set \"listen\" in %s or pass --listen HOST:PORT", h.ConfigPath())
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return failf(exitFailure, "listen for neighbours on %s: %v: is another daemon running, or choose another address with --listen", listen, err)
	}

	key := ed25519.NewKeyFromSeed(n.Key().Seed())
	led := n.Ledger()
	store := peer.LedgerStore{L: led}
	nbs := &peer.LedgerNeighbours{L: led}
	verifier := peer.ShareVerifier{Community: n.Manifest().ID()}
	stored := func(msgs []peer.Message) {
		parsed := make([]*share.Message, 0, len(msgs))
		for _, m := range msgs {
			if pm, err := share.Parse(m.Raw); err == nil {
				parsed = append(parsed, pm)
			}
		}
		n.Stored(ctx, parsed)
	}
	peerLog := log.With("part", "peer")
	sy, err := peer.NewSyncer(peer.SyncConfig{
		Key: key, Store: store, Neighbours: nbs, Verifier: verifier, Logger: peerLog, OnAdded: stored,
	})
	if err != nil {
		ln.Close()
		return withCode(exitFailure, err)
	}
	tr.s.Store(sy)
	srv, err := peer.NewServer(peer.ServerConfig{
		Key: key, Store: store, Neighbours: nbs, Verifier: verifier, Logger: peerLog,
		OnConflict: sy.Kick, OnAdded: stored,
	})
	if err != nil {
		ln.Close()
		return withCode(exitFailure, err)
	}

	id := n.Identity()
	log.Info("household running", "name", id.Name, "id", id.ID, "listen", ln.Addr().String(), "home", h.String())

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	run := func(name string, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil {
				errs <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}
	run("peer server", func() error { return srv.Serve(ln) })
	run("peer sync", func() error { return sy.Run(ctx) })
	run("household", func() error { return n.Run(ctx) })

	<-ctx.Done()
	log.Info("stopping")
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	if len(all) > 0 {
		return withCode(exitFailure, errors.Join(all...))
	}
	log.Info("stopped")
	return nil
}
