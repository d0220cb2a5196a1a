package daemon

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/commons-energy/commons/meter/sim"
)

// scrape reads the metrics listener at addr over HTTP and returns every
// sample without labels by name.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("metrics: status %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("metrics are not in the text format: %v", err)
	}
	out := map[string]float64{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) > 0 {
				continue
			}
			switch {
			case m.GetCounter() != nil:
				out[name] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[name] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

// TestMetricsCountEveryTelegram writes telegrams one by one into a real
// pseudo-terminal that the daemon reads as its meter, and scrapes /metrics
// over HTTP after each: the telegram and rejection counters must follow
// every telegram, not only the meter's online/offline changes.
func TestMetricsCountEveryTelegram(t *testing.T) {
	pty, err := sim.OpenPTY("")
	if err != nil {
		t.Skipf("no pseudo-terminal on this machine: %v", err)
	}
	t.Cleanup(func() { pty.Close() })
	p, err := sim.LoadProfile("home")
	if err != nil {
		t.Fatal(err)
	}
	m := sim.New(p, 3, time.Date(2025, 1, 12, 18, 0, 0, 0, time.UTC))
	h := initHome(t, "Alice", pty.Path())
	r := start(t, h, Options{Listen: ListenOff, MetricsListen: "127.0.0.1:0"})
	addr := r.rt.MetricsAddr()

	// Wait until the reader has the port open: what is written before
	// that is lost, as on a real line.
	at := time.Date(2025, 1, 12, 18, 0, 0, 0, time.UTC)
	eventually(t, "the meter to come online", func() bool {
		at = at.Add(time.Second)
		if _, err := pty.Write(m.Telegram(at)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		return scrape(t, addr)["commons_meter_online"] == 1
	})
	base := scrape(t, addr)
	good0, bad0 := base["commons_meter_telegrams_total"], base["commons_meter_rejected_total"]

	// One corrupted telegram, sent again and again: the reader's last
	// error stays the same between rejections.
	corrupt := m.Telegram(at.Add(-time.Hour))
	i := bytes.Index(corrupt, []byte("1-0:1.8.1(")) + len("1-0:1.8.1(")
	if i < len("1-0:1.8.1(") {
		t.Fatal("simulated telegram without 1-0:1.8.1")
	}
	corrupt[i] ^= 1 // '0' <-> '1': the CRC no longer matches

	const n = 5
	var steps []bool // true: a rejected telegram
	for range n {
		steps = append(steps, false)
	}
	for range n {
		steps = append(steps, true)
	}
	var good, bad float64
	for i, rejected := range steps {
		at = at.Add(time.Second)
		tg := m.Telegram(at)
		if rejected {
			tg = corrupt
			bad++
		} else {
			good++
		}
		if _, err := pty.Write(tg); err != nil {
			t.Fatal(err)
		}
		var last map[string]float64
		deadline := time.Now().Add(15 * time.Second)
		for {
			last = scrape(t, addr)
			if last["commons_meter_telegrams_total"] == good0+good && last["commons_meter_rejected_total"] == bad0+bad {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after telegram %d (rejected %v): telegrams_total %v rejected_total %v, want %v and %v",
					i+1, rejected, last["commons_meter_telegrams_total"], last["commons_meter_rejected_total"], good0+good, bad0+bad)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if good != n || bad != n {
		t.Fatalf("sent %v valid and %v bad telegrams", good, bad)
	}
}

func TestLoopbackOnly(t *testing.T) {
	tests := []struct {
		addr string
		want bool
	}{
		{":9100", false},
		{"0.0.0.0:9100", false},
		{"[::]:9100", false},
		{"127.0.0.1:9100", true},
		{"127.0.0.2:9100", true},
		{"[::1]:9100", true},
		{"localhost:9100", true},
		{"LOCALHOST:9100", true},
		{"192.0.2.1:9100", false},
		{"[2001:db8::1]:9100", false},
		{"box.example:9100", false},
		{"9100", false},
	}
	for _, tc := range tests {
		if got := loopbackOnly(tc.addr); got != tc.want {
			t.Errorf("loopbackOnly(%q) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}

// TestMetricsListenLogs: the metrics listener logs the address it bound
// (with the port the system chose) and warns when it is not loopback.
func TestMetricsListenLogs(t *testing.T) {
	tests := []struct {
		listen string
		warn   bool
	}{
		{"127.0.0.1:0", false},
		{"localhost:0", false},
		{":0", true},
		{"0.0.0.0:0", true},
	}
	for _, tc := range tests {
		t.Run(tc.listen, func(t *testing.T) {
			var buf bytes.Buffer
			rt := &Runtime{log: slog.New(slog.NewTextHandler(&buf, nil))}
			if err := rt.listenMetrics(tc.listen); err != nil {
				t.Skipf("cannot listen on %s here: %v", tc.listen, err)
			}
			defer rt.metricsLn.Close()
			out := buf.String()
			if want := "addr=" + rt.MetricsAddr(); !strings.Contains(out, "level=INFO msg=\"metrics listening\" "+want) {
				t.Errorf("log %q lacks the info line with %s", out, want)
			}
			if got := strings.Contains(out, "level=WARN") && strings.Contains(out, "reveal who is home"); got != tc.warn {
				t.Errorf("warned %v, want %v; log:\n%s", got, tc.warn, out)
			}
		})
	}
}
