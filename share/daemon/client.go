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

	"github.com/commons-energy/commons/share/household"
	"github.com/commons-energy/commons/share/node"
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
// implements household.Household, so CLI commands and an attached
// dashboard use it as they use an in-process node. It is safe for
// concurrent use.
type Client struct {
	hc     *http.Client // ordinary calls, bounded by callTimeout
	stream *http.Client // the events stream, no overall timeout
	hello  hello
	cal    household.Calendar
}

var _ household.Household = (*Client)(nil)

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
	c.cal = household.Calendar{Location: loc, Slot: c.hello.SlotLength}
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

// Close implements household.Household: it drops idle connections.
func (c *Client) Close() error {
	c.hc.CloseIdleConnections()
	c.stream.CloseIdleConnections()
	return nil
}

// stoppedError is a call's error when the daemon's socket no longer
// answers: the daemon stopped (its socket is gone, or nothing listens on
// it) or went away in the middle of the call. It says so in plain words
// rather than as a dial error, and wraps household.ErrUnavailable so an attached
// dashboard waits for the daemon to return.
type stoppedError struct{ err error }

func (e *stoppedError) Error() string {
	return "the daemon stopped (start it with: commons daemon)"
}
func (e *stoppedError) Unwrap() []error { return []error{household.ErrUnavailable, e.err} }

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
		kind = household.ErrNotFound
	case "invalid":
		kind = household.ErrInvalid
	case "integrity":
		kind = household.ErrIntegrity
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

// Identity implements household.Household (as of Connect).
func (c *Client) Identity() household.Identity { return c.hello.Identity }

// Calendar implements household.Household.
func (c *Client) Calendar() household.Calendar { return c.cal }

// AddNeighbour implements household.Household.
func (c *Client) AddNeighbour(ctx context.Context, invite, alias string) (household.Neighbour, error) {
	var nb household.Neighbour
	err := c.post(ctx, pathNeighbours, neighbourReq{Invite: invite, Alias: alias}, &nb)
	return nb, err
}

// Neighbours implements household.Household.
func (c *Client) Neighbours(ctx context.Context) ([]household.Neighbour, error) {
	var ns []household.Neighbour
	err := c.get(ctx, pathNeighbours, nil, &ns)
	return ns, err
}

// RemoveNeighbour implements household.Household.
func (c *Client) RemoveNeighbour(ctx context.Context, nameOrID string) (household.Neighbour, error) {
	var nb household.Neighbour
	err := c.do(ctx, http.MethodDelete, pathNeighbours+"/"+url.PathEscape(nameOrID), nil, nil, &nb)
	return nb, err
}

// Pledge implements household.Household: nil error = signed and durable in the
// daemon's ledger.
func (c *Client) Pledge(ctx context.Context, req household.PledgeRequest) (household.PledgeResult, error) {
	var res household.PledgeResult
	err := c.post(ctx, pathPledges, req, &res)
	return res, err
}

func (c *Client) answer(ctx context.Context, verb, id string) (household.Pledge, error) {
	var p household.Pledge
	err := c.post(ctx, pathPledges+"/"+url.PathEscape(id)+"/"+verb, nil, &p)
	return p, err
}

// Accept implements household.Household.
func (c *Client) Accept(ctx context.Context, id string) (household.Pledge, error) {
	return c.answer(ctx, "accept", id)
}

// Decline implements household.Household.
func (c *Client) Decline(ctx context.Context, id string) (household.Pledge, error) {
	return c.answer(ctx, "decline", id)
}

// Cancel implements household.Household.
func (c *Client) Cancel(ctx context.Context, id string) (household.Pledge, error) {
	return c.answer(ctx, "cancel", id)
}

// Pledges implements household.Household.
func (c *Client) Pledges(ctx context.Context, openOnly bool) ([]household.Pledge, error) {
	q := url.Values{}
	if openOnly {
		q.Set("open", "true")
	}
	var ps []household.Pledge
	err := c.get(ctx, pathPledges, q, &ps)
	return ps, err
}

// FindPledge implements household.Household.
func (c *Client) FindPledge(ctx context.Context, id string) (household.Pledge, error) {
	var p household.Pledge
	err := c.get(ctx, pathPledges+"/"+url.PathEscape(id), nil, &p)
	return p, err
}

// Status implements household.Household.
func (c *Client) Status(ctx context.Context) (household.Status, error) {
	var w statusWire
	if err := c.get(ctx, pathStatus, nil, &w); err != nil {
		return household.Status{}, err
	}
	return w.status(), nil
}

// Verify implements household.Household.
func (c *Client) Verify(ctx context.Context) (household.VerifyReport, error) {
	var rep household.VerifyReport
	err := c.get(ctx, pathVerify, nil, &rep)
	return rep, err
}

// Settle implements household.Household: one settlement round in the
// daemon (it also runs them by itself every minute).
func (c *Client) Settle(ctx context.Context) (household.SettleReport, error) {
	var rep household.SettleReport
	err := c.post(ctx, pathSettle, nil, &rep)
	return rep, err
}

// ExportLedger implements household.Household.
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

// ExportMessages implements household.Household.
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

// Import implements household.Household.
func (c *Client) Import(ctx context.Context, r io.Reader) (household.ImportReport, error) {
	var rep household.ImportReport
	err := c.do(ctx, http.MethodPost, pathMessages, nil, io.NopCloser(r), &rep)
	return rep, err
}

// State implements household.Household.
func (c *Client) State(ctx context.Context) (household.State, error) {
	var w stateWire
	if err := c.get(ctx, pathState, nil, &w); err != nil {
		return household.State{}, err
	}
	return household.State{Home: w.Home, Live: w.Live.live(), Neighbours: w.Neighbours, Pledges: w.Pledges, Relay: w.Relay}, nil
}

// Samples implements household.Household.
func (c *Client) Samples(ctx context.Context, since time.Time) ([]household.Sample, error) {
	var ss []household.Sample
	err := c.get(ctx, pathSamples, url.Values{"since": {since.Format(time.RFC3339Nano)}}, &ss)
	return ss, err
}

// Aggregates implements household.Household.
func (c *Client) Aggregates(ctx context.Context, from, to time.Time) ([]household.Bucket, error) {
	var bs []household.Bucket
	err := c.get(ctx, pathAggregates, url.Values{"from": {from.Format(time.RFC3339Nano)}, "to": {to.Format(time.RFC3339Nano)}}, &bs)
	return bs, err
}

// Preview implements household.Household.
func (c *Client) Preview(ctx context.Context, req household.PledgeRequest) (household.Preview, error) {
	var pv household.Preview
	err := c.post(ctx, pathPreview, req, &pv)
	return pv, err
}

// eventBuffer is the attached dashboard's event buffer.
const eventBuffer = 16

// Subscribe implements household.Household: it streams the daemon's events,
// reconnecting with a short backoff while ctx lasts (a restarted daemon
// is picked up again). Live events are dropped when the buffer is full;
// other kinds wait for room.
func (c *Client) Subscribe(ctx context.Context) <-chan household.Event {
	out := make(chan household.Event, eventBuffer)
	go func() {
		defer close(out)
		backoff := 250 * time.Millisecond
		for ctx.Err() == nil {
			if c.streamEvents(ctx, out) {
				backoff = 250 * time.Millisecond
				// The stream broke (the daemon restarted or stopped): the
				// dashboard refreshes, and shows the error if it is gone.
				select {
				case out <- household.Event{Kind: household.EventState}:
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

// streamEvents reads one events connection until it ends; it reports whether
// the connection was established.
func (c *Client) streamEvents(ctx context.Context, out chan<- household.Event) bool {
	resp, err := c.send(ctx, c.stream, http.MethodGet, pathEvents, nil, nil)
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
		if ev.Kind == household.EventLive {
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
