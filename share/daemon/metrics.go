package daemon

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// metricsPath is where the metrics listener answers.
const metricsPath = "/metrics"

// listenMetrics binds the metrics listener.
func (rt *Runtime) listenMetrics(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics listen %s: %w; choose another address with --metrics-listen", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+metricsPath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		rt.writeMetrics(r.Context(), w)
	})
	rt.metricsLn = ln
	rt.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: apiReadHeader, ReadTimeout: apiRead, WriteTimeout: apiRead, IdleTimeout: apiIdle}
	return nil
}

// MetricsAddr is the address the metrics listener answers on ("" when
// none), with the port the system picked for a port 0.
func (rt *Runtime) MetricsAddr() string {
	if rt.metricsLn == nil {
		return ""
	}
	return rt.metricsLn.Addr().String()
}

// promWriter writes the Prometheus text exposition format (version 0.0.4).
type promWriter struct {
	w *bufio.Writer
}

// metric writes one family's help and type lines.
func (p promWriter) family(name, typ, help string) {
	fmt.Fprintf(p.w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
}

// sample writes one sample; labels are name, value pairs.
func (p promWriter) sample(name string, v int64, labels ...string) {
	p.w.WriteString(name)
	if len(labels) > 0 {
		p.w.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				p.w.WriteByte(',')
			}
			p.w.WriteString(labels[i])
			p.w.WriteString(`="`)
			p.w.WriteString(escapeLabel(labels[i+1]))
			p.w.WriteByte('"')
		}
		p.w.WriteByte('}')
	}
	p.w.WriteByte(' ')
	p.w.WriteString(strconv.FormatInt(v, 10))
	p.w.WriteByte('\n')
}

func (p promWriter) one(name, typ, help string, v int64) {
	p.family(name, typ, help)
	p.sample(name, v)
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func escapeLabel(s string) string { return labelEscaper.Replace(s) }

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// writeMetrics writes the household's metrics, read at this moment.
func (rt *Runtime) writeMetrics(ctx context.Context, w io.Writer) {
	p := promWriter{w: bufio.NewWriter(w)}
	defer p.w.Flush()

	r, has, health, running := rt.n.Latest()
	p.one("commons_meter_online", "gauge", "1 while the meter sends valid telegrams.", b2i(running && health.Online))
	p.one("commons_meter_telegrams_total", "counter", "Valid telegrams read since the daemon started.", int64(health.Telegrams))
	p.one("commons_meter_rejected_total", "counter", "Telegrams rejected (checksum, framing) since the daemon started.", int64(health.Rejected))
	p.one("commons_meter_reconnects_total", "counter", "Times the serial port was reopened.", int64(health.Reconnects))
	p.one("commons_meter_last_telegram_timestamp_seconds", "gauge", "Unix time of the last valid telegram, 0 when none.", unix(health.LastTelegram))
	if has {
		if r.PowerImportW.OK {
			p.one("commons_power_import_watts", "gauge", "Power drawn from the grid now, W.", r.PowerImportW.V)
		}
		if r.PowerExportW.OK {
			p.one("commons_power_export_watts", "gauge", "Power delivered to the grid now, W.", r.PowerExportW.V)
		}
		if r.EnergyImport.Total.OK {
			p.one("commons_energy_import_wh_total", "counter", "The meter's import register, Wh.", r.EnergyImport.Total.V)
		}
		if r.EnergyExport.Total.OK {
			p.one("commons_energy_export_wh_total", "counter", "The meter's export register, Wh.", r.EnergyExport.Total.V)
		}
	}

	rt.statusMu.Lock()
	st := rt.status
	rt.statusMu.Unlock()
	if st.published {
		p.one("commons_status_surplus_watts", "gauge", "Last published smoothed surplus (negative: need), W.", st.net)
		p.one("commons_status_published_timestamp_seconds", "gauge", "Unix time of the last published status.", st.at.Unix())
	}

	if n, err := rt.n.Ledger().Count(ctx); err == nil {
		p.one("commons_ledger_messages", "gauge", "Chain messages stored in the ledger.", n)
	}

	if rt.server != nil {
		s := rt.server.Stats()
		p.one("commons_peer_requests_total", "counter", "Authenticated requests from neighbours.", int64(s.Requests))
		p.one("commons_peer_messages_added_total", "counter", "Messages neighbours pushed that were stored.", int64(s.Added))
		p.one("commons_peer_messages_duplicate_total", "counter", "Messages neighbours pushed that were already held.", int64(s.Duplicates))
		p.one("commons_peer_requests_rejected_total", "counter", "Neighbour requests answered with a 4xx status.", int64(s.Rejected))
		p.one("commons_peer_requests_limited_total", "counter", "Neighbour requests answered 429 (rate limit).", int64(s.Limited))
	}
	peers := rt.sync.State()
	if len(peers) > 0 {
		p.family("commons_neighbour_pull_failures", "gauge", "Consecutive failed pulls from the neighbour.")
		for _, ps := range peers {
			p.sample("commons_neighbour_pull_failures", int64(ps.Failures), "neighbour", ps.ID.String())
		}
		p.family("commons_neighbour_last_pull_timestamp_seconds", "gauge", "Unix time of the last successful pull from the neighbour, 0 when none.")
		for _, ps := range peers {
			p.sample("commons_neighbour_last_pull_timestamp_seconds", unix(ps.LastOK), "neighbour", ps.ID.String())
		}
		p.family("commons_neighbour_push_dropped_total", "counter", "Messages not pushed to the neighbour (queue full or push failed; its next pull fetches them).")
		for _, ps := range peers {
			p.sample("commons_neighbour_push_dropped_total", int64(ps.Dropped), "neighbour", ps.ID.String())
		}
	}
}
