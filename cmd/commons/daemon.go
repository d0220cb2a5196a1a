package main

import (
	"errors"
	"io"
	"log/slog"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	daemonpkg "github.com/commons-energy/commons/share/daemon"
	"github.com/commons-energy/commons/share/mqtt"
	"github.com/commons-energy/commons/share/node"
)

func newDaemonCmd(g *globalFlags) *cobra.Command {
	var listen, sshListen, metricsListen, mqttURL, logFormat, logLevel, autoMax string
	var autoFrom []string
	var sshLim daemonpkg.SSHLimits
	cmd := &cobra.Command{
		Use:   "daemon [--listen ADDR] [--ssh-listen ADDR [--ssh-max-sessions N] [--ssh-idle-timeout D]] [--metrics-listen ADDR] [--mqtt URL] [--log-format text|json] [--log-level LEVEL] [--auto-accept ENERGY [--auto-accept-from NAME]...]",
		Short: "Run the household headless: meter, ledger, neighbours, local socket",
		Long: `Runs the household without a screen: reads the meter, writes its aggregates to the
ledger in batches, publishes a signed status of its surplus or need, settles pledges whose
window has closed, and exchanges signed messages with the neighbours directly (mutual TLS,
pinned by household id) on the config's listen address. With a "relay" in the config
(commons init --relay nats://hub:4222) it also publishes its messages to the community hub
and reads the community's from there, verifying each as from a neighbour; a hub that is
away or refuses it shows in 'commons status' and stops nothing. A listen of "none" runs
no peer server: the household reaches its neighbours through the hub only.

While it runs, every other commons command on this home (a dashboard, an SSH session, a
cron pledge) goes through its local socket (commons.sock in the home), so the meter and
the signing key have one owner. The socket is mode 0600; where the groups commons-owners
and commons-viewers exist, others in them may use it too, viewers only to look (each
connection is checked with SO_PEERCRED; see docs/DAEMON.md). Logs go to stderr. SIGTERM or SIGINT stop it
cleanly: pending aggregates are written, the ledger closed, the socket removed.

--auto-accept accepts incoming pledges up to that energy without asking (from the
neighbours named with --auto-accept-from, or from every neighbour); without it the
config's "auto_accept" applies, and without that every incoming pledge waits for the
household (commons accept ID).

--ssh-listen serves the dashboard over SSH, one screen per session, to the public keys
listed in authorized_keys in the home's config folder (owners: they may pledge, accept,
decline and cancel) and in viewer_keys there (viewers: they only look). The host key is
made on first start (ssh_host_ed25519 in the data folder, mode 0600). At most
--ssh-max-sessions dashboards are open at once; one without a key press for
--ssh-idle-timeout ends. See docs/DAEMON.md.

--metrics-listen serves the meter's health, power and registers, the published status,
the ledger's size and the neighbour links in the Prometheus text format at /metrics. Live
watts reveal who is home: bind a loopback address (127.0.0.1:9742) unless the network is
trusted; the daemon warns when the address is not loopback.

--mqtt publishes the household to Home Assistant over MQTT (mqtt://HOST[:1883] or
mqtts://HOST[:8883]): live power, the meter's energy registers, per-phase values, the
meter's health and the commons figures, with Home Assistant's MQTT discovery. The
config's "mqtt" block does the same and holds the user name, password file, CA file and
topic prefixes. Without either nothing is published: live watts reveal who is home. A
broker that is down or refuses the login does not stop the household; it is retried
with backoff and shown in 'commons status --json'. See docs/DAEMON.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(cmd.ErrOrStderr(), logFormat, logLevel)
			if err != nil {
				return err
			}
			if sshLim.MaxSessions < 1 {
				return failf(exitUsage, "--ssh-max-sessions %d: give at least 1", sshLim.MaxSessions)
			}
			if sshLim.IdleTimeout < time.Minute {
				return failf(exitUsage, "--ssh-idle-timeout %s: give at least 1m (e.g. 30m)", sshLim.IdleTimeout)
			}
			opts := daemonpkg.Options{Owner: "commons daemon", Socket: true, Logger: log, MetricsListen: metricsListen,
				SSHListen: sshListen, SSH: sshLim}
			if sshListen != "" {
				// the SSH dashboards get the same settings file as a
				// local one; read once, a bad file stops the start
				settings, err := loadDashboardSettings()
				if err != nil {
					return err
				}
				opts.Dashboard = settings.sshDashboard
			}
			opts.MQTT = &mqtt.Options{URL: mqttURL, Version: currentVersion().Version}
			if cmd.Flags().Changed("mqtt") {
				if _, _, err := mqtt.ParseURL(mqttURL); err != nil {
					return failf(exitUsage, "--mqtt: %v", err)
				}
			}
			if cmd.Flags().Changed("listen") {
				opts.Listen = listen
				if listen == "" {
					opts.Listen = daemonpkg.ListenOff
				}
			}
			if cmd.Flags().Changed("auto-accept") {
				wh, err := node.ParseEnergy(autoMax)
				if err != nil {
					return withCode(exitUsage, err)
				}
				opts.AutoAccept = &daemonpkg.AutoAccept{MaxWh: wh, From: autoFrom}
			} else if len(autoFrom) > 0 {
				return failf(exitUsage, "--auto-accept-from needs --auto-accept ENERGY (the largest pledge to accept without asking)")
			}
			h, err := g.resolveHome()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			rt, err := daemonpkg.Open(ctx, h, opts)
			if err != nil {
				return nodeErr(err)
			}
			runErr := rt.Run(ctx)
			if err := rt.Close(); err != nil {
				log.Error("closing the household", "err", err)
				runErr = errors.Join(runErr, err)
			}
			return withCode(exitFailure, runErr)
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "", "address where neighbours reach this box (default: the config's listen; empty or none: no peer server)")
	f.StringVar(&sshListen, "ssh-listen", "", "serve the dashboard over SSH on this address to the keys in the home's authorized_keys (owners) and viewer_keys (viewers) (default: none)")
	f.IntVar(&sshLim.MaxSessions, "ssh-max-sessions", 8, "most dashboards open over SSH at once; the next person is told so")
	f.DurationVar(&sshLim.IdleTimeout, "ssh-idle-timeout", 30*time.Minute, "end an SSH dashboard after this long without a key press")
	f.StringVar(&metricsListen, "metrics-listen", "", "serve Prometheus metrics on this address at /metrics (e.g. 127.0.0.1:9742; default: none)")
	f.StringVar(&mqttURL, "mqtt", "", "publish to Home Assistant through this MQTT broker, e.g. mqtt://homeassistant.local:1883 (default: the config's mqtt.url, else none)")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&autoMax, "auto-accept", "", "accept incoming pledges up to this energy (e.g. 2kWh) without asking")
	f.StringSliceVar(&autoFrom, "auto-accept-from", nil, "only auto-accept pledges from these neighbours (name or id; repeat or comma-separate)")
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
