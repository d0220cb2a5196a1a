package daemon

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metricsPath is where the metrics listener answers.
const metricsPath = "/metrics"

// metricsScrapeTimeout bounds the ledger queries of one scrape.
const metricsScrapeTimeout = 5 * time.Second

// listenMetrics binds the metrics listener. The household is read at
// scrape time by a collector, so nothing is kept or updated in between.
func (rt *Runtime) listenMetrics(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics listen %s: %w; choose another address with --metrics-listen", addr, err)
	}
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(householdCollector{rt: rt}); err != nil {
		ln.Close()
		return fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+metricsPath, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 2,
		Timeout:             metricsScrapeTimeout,
	}))
	bound := ln.Addr().String()
	rt.log.Info("metrics listening", "addr", bound, "path", metricsPath)
	if !loopbackOnly(bound) {
		rt.log.Warn("metrics are served beyond this machine: anyone who reaches "+bound+" sees the live watts, which reveal who is home; "+
			"use --metrics-listen 127.0.0.1:PORT unless the network is trusted", "addr", bound)
	}
	rt.metricsLn = ln
	rt.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: apiReadHeader, ReadTimeout: apiRead, WriteTimeout: apiRead, IdleTimeout: apiIdle}
	return nil
}

// loopbackOnly reports whether a listener on addr ("host:port") can be
// reached from this machine only: the host is a loopback address or
// "localhost". An empty or unspecified host (":9100", "0.0.0.0:9100",
// "[::]:9100") binds every interface; any other name or address may be
// reached from the network.
func loopbackOnly(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// MetricsAddr is the address the metrics listener answers on ("" when
// none), with the port the system picked for a port 0.
func (rt *Runtime) MetricsAddr() string {
	if rt.metricsLn == nil {
		return ""
	}
	return rt.metricsLn.Addr().String()
}

// Metric descriptions. Energy and power stay integers (Wh, W) as the meter
// sends them; Prometheus carries them as exact float64 values.
var (
	descMeterOnline     = prometheus.NewDesc("commons_meter_online", "1 while the meter sends valid telegrams.", nil, nil)
	descMeterTelegrams  = prometheus.NewDesc("commons_meter_telegrams_total", "Valid telegrams read since the daemon started.", nil, nil)
	descMeterRejected   = prometheus.NewDesc("commons_meter_rejected_total", "Telegrams rejected (checksum, framing) since the daemon started.", nil, nil)
	descMeterReconnects = prometheus.NewDesc("commons_meter_reconnects_total", "Times the serial port was reopened.", nil, nil)
	descMeterLast       = prometheus.NewDesc("commons_meter_last_telegram_timestamp_seconds", "Unix time of the last valid telegram, 0 when none.", nil, nil)
	descMeterClockSkew  = prometheus.NewDesc("commons_meter_clock_skew_seconds", "The meter's clock minus this box's at the last reading, whole seconds; absent when the meter sends no time.", nil, nil)
	descPowerImport     = prometheus.NewDesc("commons_power_import_watts", "Power drawn from the grid now, W.", nil, nil)
	descPowerExport     = prometheus.NewDesc("commons_power_export_watts", "Power delivered to the grid now, W.", nil, nil)
	descEnergyImport    = prometheus.NewDesc("commons_energy_import_wh_total", "The meter's import register, Wh.", nil, nil)
	descEnergyExport    = prometheus.NewDesc("commons_energy_export_wh_total", "The meter's export register, Wh.", nil, nil)
	descStatusSurplus   = prometheus.NewDesc("commons_status_surplus_watts", "Last published smoothed surplus (negative: need), W.", nil, nil)
	descStatusAt        = prometheus.NewDesc("commons_status_published_timestamp_seconds", "Unix time of the last published status.", nil, nil)
	descLedgerMessages  = prometheus.NewDesc("commons_ledger_messages", "Chain messages stored in the ledger.", nil, nil)
	descSealedUnopened  = prometheus.NewDesc("commons_sealed_reports_unopened_total", "Sealed reports addressed to this household that did not open (bad ciphertext, or figures that disagree with their commit or window) since the daemon started.", nil, nil)
	descPeerRequests    = prometheus.NewDesc("commons_peer_requests_total", "Authenticated requests from neighbours.", nil, nil)
	descPeerAdded       = prometheus.NewDesc("commons_peer_messages_added_total", "Messages neighbours pushed that were stored.", nil, nil)
	descPeerDuplicates  = prometheus.NewDesc("commons_peer_messages_duplicate_total", "Messages neighbours pushed that were already held.", nil, nil)
	descPeerRejected    = prometheus.NewDesc("commons_peer_requests_rejected_total", "Neighbour requests answered with a 4xx status.", nil, nil)
	descPeerLimited     = prometheus.NewDesc("commons_peer_requests_limited_total", "Neighbour requests answered 429 (rate limit).", nil, nil)
	descNbFailures      = prometheus.NewDesc("commons_neighbour_pull_failures", "Consecutive failed pulls from the neighbour.", []string{"neighbour"}, nil)
	descNbLastPull      = prometheus.NewDesc("commons_neighbour_last_pull_timestamp_seconds", "Unix time of the last successful pull from the neighbour, 0 when none.", []string{"neighbour"}, nil)
	descNbDropped       = prometheus.NewDesc("commons_neighbour_push_dropped_total", "Messages not pushed to the neighbour (queue full or push failed; its next pull fetches them).", []string{"neighbour"}, nil)
)

// householdCollector reads the running household at scrape time. Values
// the household does not have (no reading yet, no peer server) are left
// out rather than reported as zero.
type householdCollector struct {
	rt *Runtime
}

// Describe implements prometheus.Collector.
func (c householdCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descMeterOnline, descMeterTelegrams, descMeterRejected, descMeterReconnects, descMeterLast, descMeterClockSkew,
		descPowerImport, descPowerExport, descEnergyImport, descEnergyExport,
		descStatusSurplus, descStatusAt, descLedgerMessages, descSealedUnopened,
		descPeerRequests, descPeerAdded, descPeerDuplicates, descPeerRejected, descPeerLimited,
		descNbFailures, descNbLastPull, descNbDropped,
	} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c householdCollector) Collect(ch chan<- prometheus.Metric) {
	rt := c.rt
	gauge := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}

	r, has, health, running := rt.n.Latest()
	gauge(descMeterOnline, b2i(running && health.Online))
	counter(descMeterTelegrams, health.Telegrams)
	counter(descMeterRejected, health.Rejected)
	counter(descMeterReconnects, health.Reconnects)
	gauge(descMeterLast, unix(health.LastTelegram))
	if skew, ok := rt.n.MeterClockSkew(); ok {
		gauge(descMeterClockSkew, int64(skew/time.Second))
	}
	if has {
		if r.PowerImportW.OK {
			gauge(descPowerImport, r.PowerImportW.V)
		}
		if r.PowerExportW.OK {
			gauge(descPowerExport, r.PowerExportW.V)
		}
		if r.EnergyImport.Total.OK {
			ch <- prometheus.MustNewConstMetric(descEnergyImport, prometheus.CounterValue, float64(r.EnergyImport.Total.V))
		}
		if r.EnergyExport.Total.OK {
			ch <- prometheus.MustNewConstMetric(descEnergyExport, prometheus.CounterValue, float64(r.EnergyExport.Total.V))
		}
	}

	rt.statusMu.Lock()
	st := rt.status
	rt.statusMu.Unlock()
	if st.published {
		gauge(descStatusSurplus, st.net)
		gauge(descStatusAt, st.at.Unix())
	}

	ctx, cancel := context.WithTimeout(context.Background(), metricsScrapeTimeout)
	defer cancel()
	if n, err := rt.n.Ledger().Count(ctx); err == nil {
		gauge(descLedgerMessages, n)
	} else {
		ch <- prometheus.NewInvalidMetric(descLedgerMessages, fmt.Errorf("count ledger messages: %w", err))
	}

	counter(descSealedUnopened, rt.n.SealedFailures())

	if rt.server != nil {
		s := rt.server.Stats()
		counter(descPeerRequests, uint64(s.Requests))
		counter(descPeerAdded, uint64(s.Added))
		counter(descPeerDuplicates, uint64(s.Duplicates))
		counter(descPeerRejected, uint64(s.Rejected))
		counter(descPeerLimited, uint64(s.Limited))
	}
	for _, ps := range rt.sync.State() {
		id := ps.ID.String()
		gauge(descNbFailures, int64(ps.Failures), id)
		gauge(descNbLastPull, unix(ps.LastOK), id)
		counter(descNbDropped, uint64(ps.Dropped), id)
	}
}

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
