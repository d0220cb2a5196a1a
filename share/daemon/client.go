package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/commons-energy/commons/share/node"
	"github.com/commons-energy/commons/tui"
)

// ErrNoDaemon says no running household answers on a home's socket: the
// caller opens the household in-process instead.
var ErrNoDaemon = errors.New("no daemon is running for this home")

// Client timeouts.
const (
	dialTimeout  = 2 * time.Second
	helloTimeout = 10 * time.Second // a daemon that accepts but does not answer
	callTimeout  = 2 * time.Minute  // one request without a deadline of its own
	maxAnswer    = 64 << 20         // largest JSON answer read
	maxEventLen  = 1 << 20          // largest events-stream line
)

// Client talks to a running household over its local socket. It
// implements node.Household, so CLI commands use it unchanged, and TUI
// returns its tui.Backend for an attached dashboard. It is safe for
// concurrent use.
type Client struct {
	hc     *http.Client // ordinary calls, bounded by callTimeout
	stream *http.Client // the events stream, no overall timeout
	hello  hello
	cal    node.Calendar
}

var _ node.Household = (*Client)(nil)

// Connect returns a client of the household running in home, or an error
// wrapping ErrNoDaemon when no socket answers there (none, or a stale one
// left by a crashed daemon).
func Connect(ctx context.Context, home node.Home) (*Client, error) {
	return Dial(ctx, home.SocketPath())
}

// Dial is Connect for a socket path.
func Dial(ctx context.Context, socket string) (*Client, error) {
	if _, err := os.Stat(socket); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w (no socket %s)", ErrNoDaemon, socket)
	}
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		d := net.Dialer{Timeout: dialTimeout}
		return d.DialContext(ctx, "unix", socket)
	}
	conn, err := dial(ctx, "", "")
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w (stale socket %s)", ErrNoDaemon, socket)
		}
		return nil, fmt.Errorf("local socket %s: %w", socket, err)
	}
	conn.Close()
	c := &Client{
		hc:     &http.Client{Transport: &http.Transport{DialContext: dial, MaxIdleConns: 4, IdleConnTimeout: 30 * time.Second}, Timeout: callTimeout},
		stream: &http.Client{Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}},
	}
	hctx, cancel := context.WithTimeout(ctx, helloTimeout)
	defer cancel()
	if err := c.get(hctx, pathHello, nil, &c.hello); err != nil {
		c.Close()
		return nil, fmt.Errorf("daemon on %s: %w", socket, err)
	}
	loc := time.Local
	if c.hello.Location != "" && c.hello.Location != "Local" {
		if l, err := time.LoadLocation(c.hello.Location); err == nil {
			loc = l
		}
	}
	c.cal = node.Calendar{Location: loc, Slot: c.hello.SlotLength}
	return c, nil
}

// PID is the daemon's process id.
func (c *Client) PID() int { return c.hello.PID }

// Role is what the daemon lets this client do, decided from the process's
// user and groups: RoleOwner or RoleViewer. (Someone in neither group
// fails Connect with an error wrapping ErrForbidden.)
func (c *Client) Role() Role {
	if c.hello.Role == RoleViewer.String() {
		return RoleViewer
	}
	return RoleOwner
}

// PeerListen is the address the daemon's peer server listens on.
func (c *Client) PeerListen() string { return c.hello.PeerListen }

// Close implements node.Household: it drops idle connections.
func (c *Client) Close() error {
	c.hc.CloseIdleConnections()
	c.stream.CloseIdleConnections()
	return nil
}

// stoppedError is a call's error when the daemon's socket no longer
// answers: the daemon stopped (its socket is gone, or nothing listens on
// it) or went away in the middle of the call. It says so in plain words
// rather than as a dial error, and wraps tui.ErrUnavailable so an attached
// dashboard waits for the daemon to return.
type stoppedError struct{ err error }

func (e *stoppedError) Error() string {
	return "the daemon stopped (start it with: commons daemon)"
}
func (e *stoppedError) Unwrap() []error { return []error{tui.ErrUnavailable, e.err} }

// gone reports whether err says the daemon is not there: no socket file,
// nothing listening on it, or the connection cut by its exit.
func gone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// remoteError is an error the daemon answered; it unwraps to the node
// sentinel of its kind so callers map it to exit codes as in-process.
type remoteError struct {
	msg  string
	kind error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.kind }

// do sends one request and decodes a JSON answer into out (nil: discard).
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body io.Reader, out any) error {
	resp, err := c.send(ctx, c.hc, method, path, q, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, err := io.Copy(io.Discard, resp.Body)
		return err
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAnswer)).Decode(out); err != nil {
		return fmt.Errorf("daemon answer to %s %s: %w", method, path, err)
	}
	return nil
}

// send sends a request and turns an error status into an error.
func (c *Client) send(ctx context.Context, hc *http.Client, method, path string, q url.Values, body io.Reader) (*http.Response, error) {
	u := "http://commons" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if gone(err) {
			return nil, &stoppedError{err: err}
		}
		return nil, fmt.Errorf("talk to the daemon: %w", err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	var eb errorBody
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxJSONBody))
	if json.Unmarshal(b, &eb) != nil || eb.Error == "" {
		eb.Error = fmt.Sprintf("daemon answered %s to %s %s", resp.Status, method, path)
	}
	var kind error
	switch eb.Kind {
	case "not_found":
		kind = node.ErrNotFound
	case "invalid":
		kind = node.ErrInvalid
	case "integrity":
		kind = node.ErrIntegrity
	case "forbidden":
		kind = ErrForbidden
	}
	return nil, &remoteError{msg: eb.Error, kind: kind}
}

func (c *Client) get(ctx context.Context, path string, q url.Values, out any) error {
	return c.do(ctx, http.MethodGet, path, q, nil, out)
}

func (c *Client) post(ctx context.Context, path string, in, out any) error {
	var body io.Reader = http.NoBody
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	return c.do(ctx, http.MethodPost, path, nil, body, out)
}

// Identity implements node.Household (as of Connect).
func (c *Client) Identity() node.Identity { return c.hello.Identity }

// Calendar implements node.Household.
func (c *Client) Calendar() node.Calendar { return c.cal }

// AddNeighbour implements node.Household.
func (c *Client) AddNeighbour(ctx context.Context, invite, alias string) (node.Neighbour, error) {
	var nb node.Neighbour
	err := c.post(ctx, pathNeighbours, neighbourReq{Invite: invite, Alias: alias}, &nb)
	return nb, err
}

// Neighbours implements node.Household.
func (c *Client) Neighbours(ctx context.Context) ([]node.Neighbour, error) {
	var ns []node.Neighbour
	err := c.get(ctx, pathNeighbours, nil, &ns)
	return ns, err
}

// RemoveNeighbour implements node.Household.
func (c *Client) RemoveNeighbour(ctx context.Context, nameOrID string) (node.Neighbour, error) {
	var nb node.Neighbour
	err := c.do(ctx, http.MethodDelete, pathNeighbours+"/"+url.PathEscape(nameOrID), nil, nil, &nb)
	return nb, err
}

// Pledge implements node.Household: nil error = signed and durable in the
// daemon's ledger.
func (c *Client) Pledge(ctx context.Context, req node.PledgeRequest) (node.Pledge, error) {
	var p node.Pledge
	err := c.post(ctx, pathPledges, pledgeReq{To: req.To, EnergyWh: req.EnergyWh, Start: req.Start, End: req.End, Force: req.Force, IdemKey: req.IdempotencyKey}, &p)
	return p, err
}

func (c *Client) answer(ctx context.Context, verb, id string) (node.Pledge, error) {
	var p node.Pledge
	err := c.post(ctx, pathPledges+"/"+url.PathEscape(id)+"/"+verb, nil, &p)
	return p, err
}

// Accept implements node.Household.
func (c *Client) Accept(ctx context.Context, id string) (node.Pledge, error) {
	return c.answer(ctx, "accept", id)
}

// Decline implements node.Household.
func (c *Client) Decline(ctx context.Context, id string) (node.Pledge, error) {
	return c.answer(ctx, "decline", id)
}

// Cancel implements node.Household.
func (c *Client) Cancel(ctx context.Context, id string) (node.Pledge, error) {
	return c.answer(ctx, "cancel", id)
}

// Pledges implements node.Household.
func (c *Client) Pledges(ctx context.Context, openOnly bool) ([]node.Pledge, error) {
	q := url.Values{}
	if openOnly {
		q.Set("open", "true")
	}
	var ps []node.Pledge
	err := c.get(ctx, pathPledges, q, &ps)
	return ps, err
}

// FindPledge implements node.Household.
func (c *Client) FindPledge(ctx context.Context, id string) (node.Pledge, error) {
	var p node.Pledge
	err := c.get(ctx, pathPledges+"/"+url.PathEscape(id), nil, &p)
	return p, err
}

// Status implements node.Household.
func (c *Client) Status(ctx context.Context) (node.Status, error) {
	var w statusWire
	if err := c.get(ctx, pathStatus, nil, &w); err != nil {
		return node.Status{}, err
	}
	return w.status(), nil
}

// Verify implements node.Household.
func (c *Client) Verify(ctx context.Context) (node.VerifyReport, error) {
	var rep node.VerifyReport
	err := c.get(ctx, pathVerify, nil, &rep)
	return rep, err
}

// Settle runs one settlement round in the daemon (it also runs them by
// itself every minute).
func (c *Client) Settle(ctx context.Context) (node.SettleReport, error) {
	var rep node.SettleReport
	err := c.post(ctx, pathSettle, nil, &rep)
	return rep, err
}

// ExportLedger implements node.Household.
func (c *Client) ExportLedger(ctx context.Context, w io.Writer, format, table string) error {
	q := url.Values{"format": {format}}
	if table != "" {
		q.Set("table", table)
	}
	resp, err := c.send(ctx, c.stream, http.MethodGet, pathExport, q, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("ledger export: %w", err)
	}
	if msg := resp.Trailer.Get(trailerError); msg != "" {
		return errors.New(msg)
	}
	return nil
}

// ExportMessages implements node.Household.
func (c *Client) ExportMessages(ctx context.Context, w io.Writer, since string) (int, error) {
	q := url.Values{}
	if since != "" {
		q.Set("since", since)
	}
	resp, err := c.send(ctx, c.hc, http.MethodGet, pathMessages, q, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, _ := strconv.Atoi(resp.Header.Get("X-Commons-Count"))
	if _, err := io.Copy(w, resp.Body); err != nil {
		return 0, fmt.Errorf("write messages: %w", err)
	}
	return n, nil
}

// Import implements node.Household.
func (c *Client) Import(ctx context.Context, r io.Reader) (node.ImportReport, error) {
	var rep node.ImportReport
	err := c.do(ctx, http.MethodPost, pathMessages, nil, io.NopCloser(r), &rep)
	return rep, err
}

// TUI returns the dashboard's backend on this daemon.
func (c *Client) TUI() tui.Backend { return tuiClient{c} }

// tuiClient implements tui.Backend over the socket.
type tuiClient struct{ c *Client }

// State implements tui.Backend.
func (t tuiClient) State(ctx context.Context) (tui.State, error) {
	var w stateWire
	if err := t.c.get(ctx, pathTUIState, nil, &w); err != nil {
		return tui.State{}, err
	}
	return tui.State{Home: w.Home, Live: w.Live.live(), Neighbours: w.Neighbours, Pledges: w.Pledges}, nil
}

// Samples implements tui.Backend.
func (t tuiClient) Samples(ctx context.Context, since time.Time) ([]tui.Sample, error) {
	var ss []tui.Sample
	err := t.c.get(ctx, pathTUISamples, url.Values{"since": {since.Format(time.RFC3339Nano)}}, &ss)
	return ss, err
}

// Aggregates implements tui.Backend.
func (t tuiClient) Aggregates(ctx context.Context, from, to time.Time) ([]tui.Bucket, error) {
	var bs []tui.Bucket
	err := t.c.get(ctx, pathTUIAggs, url.Values{"from": {from.Format(time.RFC3339Nano)}, "to": {to.Format(time.RFC3339Nano)}}, &bs)
	return bs, err
}

// Preview implements tui.Backend.
func (t tuiClient) Preview(ctx context.Context, req tui.PledgeRequest) (tui.Preview, error) {
	var pv tui.Preview
	err := t.c.post(ctx, pathTUIPreview, req, &pv)
	return pv, err
}

// Pledge implements tui.Backend.
func (t tuiClient) Pledge(ctx context.Context, req tui.PledgeRequest) (tui.PledgeResult, error) {
	var res tui.PledgeResult
	err := t.c.post(ctx, pathTUIPledge, req, &res)
	return res, err
}

// Accept implements tui.Backend.
func (t tuiClient) Accept(ctx context.Context, id string) error {
	_, err := t.c.Accept(ctx, id)
	return err
}

// Decline implements tui.Backend.
func (t tuiClient) Decline(ctx context.Context, id string) error {
	_, err := t.c.Decline(ctx, id)
	return err
}

// Cancel implements tui.Backend.
func (t tuiClient) Cancel(ctx context.Context, id string) error {
	_, err := t.c.Cancel(ctx, id)
	return err
}

// eventBuffer is the attached dashboard's event buffer.
const eventBuffer = 16

// Subscribe implements tui.Backend: it streams the daemon's events,
// reconnecting with a short backoff while ctx lasts (a restarted daemon
// is picked up again). Live events are dropped when the buffer is full;
// other kinds wait for room.
func (t tuiClient) Subscribe(ctx context.Context) <-chan tui.Event {
	out := make(chan tui.Event, eventBuffer)
	go func() {
		defer close(out)
		backoff := 250 * time.Millisecond
		for ctx.Err() == nil {
			if t.stream(ctx, out) {
				backoff = 250 * time.Millisecond
				// The stream broke (the daemon restarted or stopped): the
				// dashboard refreshes, and shows the error if it is gone.
				select {
				case out <- tui.Event{Kind: tui.EventState}:
				case <-ctx.Done():
					return
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
		}
	}()
	return out
}

// stream reads one events connection until it ends; it reports whether
// the connection was established.
func (t tuiClient) stream(ctx context.Context, out chan<- tui.Event) bool {
	resp, err := t.c.send(ctx, t.c.stream, http.MethodGet, pathEvents, nil, nil)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 4096), maxEventLen)
	for sc.Scan() {
		var w eventWire
		if err := json.Unmarshal(sc.Bytes(), &w); err != nil {
			continue
		}
		ev := w.event()
		if ev.Kind == tui.EventLive {
			select {
			case out <- ev:
			default: // the dashboard is behind: the next live event supersedes this one
			}
			continue
		}
		select {
		case out <- ev:
		case <-ctx.Done():
			return true
		}
	}
	return true
}
