package peer

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/commons-energy/commons/share"
)

// StatusError is a neighbour's refusal: the HTTP status and its reason.
type StatusError struct {
	Peer       share.HouseholdID
	Code       int
	Reason     string
	RetryAfter time.Duration // for 429: how long the neighbour asked to wait
	Result     PushResult    // for a refused push: what was stored before the refusal
}

// Error says which neighbour refused, with which status and why.
func (e *StatusError) Error() string {
	return fmt.Sprintf("neighbour %s answered %d %s: %s", e.Peer.Short(), e.Code, http.StatusText(e.Code), e.Reason)
}

// ClientConfig configures a Client.
type ClientConfig struct {
	Key ed25519.PrivateKey // this box's identity key
	// Retired are keys this household had before a key change. A
	// neighbour that has not followed the change yet refuses Key's
	// certificate; the client then presents these, in turn, and keeps
	// the one that was let in (docs/PROTOCOL.md §15.1).
	Retired []ed25519.PrivateKey
	Peer    share.HouseholdID // the neighbour's household id, pinned in TLS
	Addr    string            // the neighbour's host:port
	Timeout time.Duration     // per request, including reading the body; default 30 s
	// IdleTimeout closes a connection unused this long; default 45 s:
	// longer than the Syncer's 30 s pull interval, so each round reuses
	// the connection of the last one (a new TLS handshake per neighbour
	// and round would cost about 4 times the CPU and 10 times the bytes
	// of an idle round, docs/BENCHMARKS.md), and shorter than the
	// server's idle timeout (60 s), so the client closes first.
	IdleTimeout time.Duration
}

// Client talks to one neighbour. It is safe for concurrent use.
type Client struct {
	peer share.HouseholdID
	base string
	// hcs holds one HTTP client per certificate this box may present:
	// its key's first, then retired keys'. pref is the one that last
	// got through.
	hcs  []*http.Client
	pref atomic.Int32
}

// DefaultClientIdle is how long a Client keeps an unused connection.
const DefaultClientIdle = 45 * time.Second

// maxResponseBytes bounds what a client reads from a neighbour's answer:
// a full page of maximum-size messages plus framing.
const maxResponseBytes = 1000*(MaxMessageSize+4) + 1<<16

// NewClient returns a client for one neighbour. No connection is made yet.
func NewClient(cfg ClientConfig) (*Client, error) {
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return nil, fmt.Errorf("neighbour %s address %q: want host:port", cfg.Peer.Short(), cfg.Addr)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultClientIdle
	}
	c := &Client{peer: cfg.Peer, base: "https://" + cfg.Addr}
	for _, k := range append([]ed25519.PrivateKey{cfg.Key}, cfg.Retired...) {
		hc, err := httpClient(cfg, k)
		if err != nil {
			return nil, fmt.Errorf("peer client: %w", err)
		}
		c.hcs = append(c.hcs, hc)
	}
	return c, nil
}

// httpClient returns the HTTP client that presents key's certificate to
// the neighbour of cfg.
func httpClient(cfg ClientConfig, key ed25519.PrivateKey) (*http.Client, error) {
	cert, err := Certificate(key)
	if err != nil {
		return nil, err
	}
	tcfg := ClientTLS(cert, cfg.Peer)
	tcfg.NextProtos = []string{"http/1.1"}
	tr := &http.Transport{
		TLSClientConfig:       tcfg,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: cfg.Timeout,
		IdleConnTimeout:       cfg.IdleTimeout,
		MaxIdleConnsPerHost:   2,
		MaxConnsPerHost:       4,
		ForceAttemptHTTP2:     false,
		TLSNextProto:          map[string]func(string, *tls.Conn) http.RoundTripper{}, // HTTP/1.1 only
	}
	return &http.Client{Transport: tr, Timeout: cfg.Timeout}, nil
}

// Peer returns the neighbour's household id.
func (c *Client) Peer() share.HouseholdID { return c.peer }

// Close drops idle connections.
func (c *Client) Close() {
	for _, hc := range c.hcs {
		hc.CloseIdleConnections()
	}
}

// roundTrip sends req with the certificate that last got through; when
// that fails before any answer and the box has retired keys, it tries the
// others in turn (a neighbour that has not followed a key change yet, or
// one that has and refuses the old key) and keeps the one that answers.
func (c *Client) roundTrip(req *http.Request) (*http.Response, error) {
	first := int(c.pref.Load())
	resp, err := c.hcs[first].Do(req)
	for i := 1; err != nil && i < len(c.hcs) && req.Context().Err() == nil; i++ {
		k := (first + i) % len(c.hcs)
		again := req.Clone(req.Context())
		if req.GetBody != nil {
			if again.Body, err = req.GetBody(); err != nil {
				break
			}
		}
		var err2 error
		if resp, err2 = c.hcs[k].Do(again); err2 == nil {
			c.pref.Store(int32(k))
			err = nil
		}
	}
	return resp, err
}

func (c *Client) do(req *http.Request) (*http.Response, error) {
	resp, err := c.roundTrip(req)
	if err != nil {
		return nil, fmt.Errorf("neighbour %s: %w", c.peer.Short(), err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	se := &StatusError{Peer: c.peer, Code: resp.StatusCode}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var pr PushResult
	if json.Unmarshal(body, &pr) == nil && pr.Error != "" {
		se.Reason, se.Result = pr.Error, pr
	} else {
		se.Reason = string(bytes.TrimSpace(body))
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		se.RetryAfter = time.Duration(s) * time.Second
	}
	return nil, se
}

// Heads asks the neighbour for the last seq it holds of every author.
func (c *Client) Heads(ctx context.Context) ([]Head, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+PathHeads, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var hs []headJSON
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponseBytes)).Decode(&hs); err != nil {
		return nil, fmt.Errorf("neighbour %s heads: %w", c.peer.Short(), err)
	}
	return c.parseHeads(hs)
}

// HeadsPage is a neighbour's answer to "which heads moved since cursor
// C".
type HeadsPage struct {
	Heads  []Head
	Cursor uint64 // ask with this next time; 0: the neighbour keeps no cursor
	Full   bool   // the full list (C was 0, unknown to the neighbour, or the neighbour is older)
}

// HeadsSince asks the neighbour for the heads that moved after cursor
// since (0: all). A neighbour from before cursors answers the full list,
// which comes back as Full with Cursor 0.
func (c *Client) HeadsSince(ctx context.Context, since uint64) (HeadsPage, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+PathHeads+"?since="+strconv.FormatUint(since, 10), nil)
	if err != nil {
		return HeadsPage{}, err
	}
	resp, err := c.do(req)
	if err != nil {
		return HeadsPage{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return HeadsPage{}, fmt.Errorf("neighbour %s heads: %w", c.peer.Short(), err)
	}
	var page headsPage
	if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) > 0 && trimmed[0] == '[' {
		page.Full = true // an older neighbour: the full list as an array
		err = json.Unmarshal(body, &page.Heads)
	} else {
		err = json.Unmarshal(body, &page)
	}
	if err != nil {
		return HeadsPage{}, fmt.Errorf("neighbour %s heads: %w", c.peer.Short(), err)
	}
	heads, err := c.parseHeads(page.Heads)
	if err != nil {
		return HeadsPage{}, err
	}
	return HeadsPage{Heads: heads, Cursor: page.Cursor, Full: page.Full}, nil
}

func (c *Client) parseHeads(hs []headJSON) ([]Head, error) {
	heads := make([]Head, 0, len(hs))
	for _, h := range hs {
		id, err := share.ParseHouseholdID(h.Author)
		if err != nil {
			return nil, fmt.Errorf("neighbour %s heads: %w", c.peer.Short(), err)
		}
		heads = append(heads, Head{Author: id, Seq: h.Seq})
	}
	return heads, nil
}

// Range fetches the author's messages after seq after, at most limit (the
// neighbour may send fewer; an empty answer means it has nothing more).
// The messages are not verified here.
func (c *Client) Range(ctx context.Context, author share.HouseholdID, after uint64, limit int) ([][]byte, error) {
	url := fmt.Sprintf("%s%s%s?after=%d&limit=%d", c.base, PathFeeds, author, after, limit)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raws, err := ReadBatch(io.LimitReader(resp.Body, maxResponseBytes), max(limit, 1))
	if err != nil {
		return nil, fmt.Errorf("neighbour %s range of %s: %w", c.peer.Short(), author.Short(), err)
	}
	return raws, nil
}

func (c *Client) post(ctx context.Context, path string, raws [][]byte) (PushResult, error) {
	var body bytes.Buffer
	if err := WriteBatch(&body, raws); err != nil {
		return PushResult{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, &body)
	if err != nil {
		return PushResult{}, err
	}
	req.Header.Set("Content-Type", BatchContentType)
	resp, err := c.do(req)
	if err != nil {
		var se *StatusError
		if errors.As(err, &se) {
			return se.Result, err
		}
		return PushResult{}, err
	}
	defer resp.Body.Close()
	var pr PushResult
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&pr); err != nil {
		return PushResult{}, fmt.Errorf("neighbour %s push answer: %w", c.peer.Short(), err)
	}
	return pr, nil
}

// Push sends chain messages (exact signed bytes) to the neighbour. On a
// refusal the error is a *StatusError and the result says what was stored
// before it.
func (c *Client) Push(ctx context.Context, raws [][]byte) (PushResult, error) {
	return c.post(ctx, PathMessages, raws)
}

// PushStatus sends ephemeral status messages to the neighbour.
func (c *Client) PushStatus(ctx context.Context, raws ...[]byte) error {
	_, err := c.post(ctx, PathStatus, raws)
	return err
}
