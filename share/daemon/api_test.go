package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/commons-energy/commons/share/node"
)

// rawClient is a plain HTTP client on a home's socket.
func rawClient(h node.Home) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", h.SocketPath())
	}}, Timeout: 30 * time.Second}
}

// TestAPIBounds: the local API refuses oversized and malformed bodies with
// the right status and stores nothing, and closes a connection that never
// finishes its request headers.
func TestAPIBounds(t *testing.T) {
	h := initHome(t, "Dora", "")
	start(t, h, Options{Listen: ListenOff})
	hc := rawClient(h)
	c := connect(t, h)
	ctx := context.Background()

	tests := []struct {
		name string
		path string
		body string
		code int
		kind string
	}{
		{"oversized", pathPledges, `{"to":"` + strings.Repeat("x", maxJSONBody) + `"}`, http.StatusRequestEntityTooLarge, "invalid"},
		{"unknown field", pathPledges, `{"to":"x","energy_wh":1,"evil":true}`, http.StatusBadRequest, "invalid"},
		{"not JSON", pathNeighbours, `invite=commons1`, http.StatusBadRequest, "invalid"},
		{"bad invite", pathNeighbours, `{"invite":"commons1aaaa"}`, http.StatusBadRequest, "invalid"},
		{"unknown action", pathPledges + "/abcd/steal", ``, http.StatusNotFound, "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := hc.Post("http://commons"+tt.path, "application/json", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var eb errorBody
			if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil {
				t.Fatalf("error body: %v", err)
			}
			if resp.StatusCode != tt.code || eb.Kind != tt.kind || eb.Error == "" || strings.Contains(eb.Error, "\n") {
				t.Errorf("status %d kind %q error %q; want %d %q and one line", resp.StatusCode, eb.Kind, eb.Error, tt.code, tt.kind)
			}
		})
	}
	ps, err := c.Pledges(ctx, false)
	if err != nil || len(ps) != 0 {
		t.Errorf("pledges after the refused requests: %v, %v; want none", ps, err)
	}
	ns, err := c.Neighbours(ctx)
	if err != nil || len(ns) != 0 {
		t.Errorf("neighbours after the refused requests: %v, %v; want none", ns, err)
	}

	// Slow loris: headers never finished; the daemon hangs up.
	conn, err := net.Dial("unix", h.SocketPath())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /v1/status HTTP/1.1\r\nHost: commons\r\n")
	conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	_, err = io.Copy(io.Discard, conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Error("a connection with unfinished headers was still open after 60 s")
	}
	// The daemon still answers.
	if _, err := c.Status(ctx); err != nil {
		t.Errorf("status after the slow client: %v", err)
	}
}

// FuzzAPIRequest sends arbitrary bodies to the local API's write
// endpoints: the answer is a success or a client error with a one-line
// JSON reason, never a server error or a panic.
func FuzzAPIRequest(f *testing.F) {
	for _, s := range []string{
		`{"to":"Eve","energy_wh":1500,"start":"2030-01-01T10:00:00Z","end":"2030-01-01T11:00:00Z"}`,
		`{"invite":"commons1abc","alias":"x"}`,
		`{"To":"x","EnergyWh":-1}`,
		`{}`, `[]`, `null`, `{"to":1}`, "\x00", `{"start":"yesterday"}`,
	} {
		f.Add(uint8(0), []byte(s))
		f.Add(uint8(1), []byte(s))
		f.Add(uint8(2), []byte(s))
	}
	h, err := node.ResolveHome(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	cfg := node.DefaultConfig("Fuzz")
	if _, err := node.Init(context.Background(), h, cfg); err != nil {
		f.Fatal(err)
	}
	rt, err := Open(context.Background(), h, Options{Listen: ListenOff})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { rt.Close() })
	handler := newAPIServer(rt).Handler
	paths := []string{pathPledges, pathNeighbours, pathPreview, pathMessages}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		path := paths[int(which)%len(paths)]
		req := httptest.NewRequest(http.MethodPost, "http://commons"+path, bytes.NewReader(body))
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("POST %s %q: %d %s", path, body, rec.Code, rec.Body.String())
		}
		if rec.Code >= 400 {
			var eb errorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error == "" {
				t.Fatalf("POST %s %q: %d with body %q", path, body, rec.Code, rec.Body.String())
			}
		}
	})
}
