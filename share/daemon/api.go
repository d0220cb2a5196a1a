package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/commons-energy/commons/share"
	"github.com/commons-energy/commons/share/household"
	"github.com/commons-energy/commons/share/node"
)

// Timeouts of the local API server.
const (
	apiReadHeader = 5 * time.Second
	apiRead       = time.Minute
	apiIdle       = time.Minute
	apiStreamSend = 10 * time.Second // one event line to a stuck client
)

// listenSocket binds the local API socket at path with mode (0600, or
// 0666 when the socket's groups exist: see sockRoles.socketMode). The
// caller holds the home's lock, so a socket file already there is a stale
// one (its daemon died without removing it) and is removed; anything else
// at that path is left alone and reported.
func listenSocket(path string, mode os.FileMode) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("local socket %s: a file that is not a socket is in the way; move it away", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("local socket %s: %w", path, err)
	}
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("local socket %s: %w", path, err)
	}
	return ln, nil
}

// newAPIServer builds the local API's HTTP server.
func newAPIServer(rt *Runtime) *http.Server {
	a := &api{rt: rt, n: rt.n}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+pathHello, a.hello)
	mux.HandleFunc("GET "+pathIdentity, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, a.n.Identity()) })
	mux.HandleFunc("GET "+pathNeighbours, a.neighbours)
	mux.HandleFunc("POST "+pathNeighbours, a.addNeighbour)
	mux.HandleFunc("DELETE "+pathNeighbours+"/{who}", a.removeNeighbour)
	mux.HandleFunc("GET "+pathPledges, a.pledges)
	mux.HandleFunc("POST "+pathPledges, a.pledge)
	mux.HandleFunc("GET "+pathPledges+"/{id}", a.findPledge)
	mux.HandleFunc("POST "+pathPledges+"/{id}/{verb}", a.answer)
	mux.HandleFunc("GET "+pathStatus, a.status)
	mux.HandleFunc("GET "+pathVerify, a.verify)
	mux.HandleFunc("POST "+pathSettle, a.settle)
	mux.HandleFunc("GET "+pathExport, a.exportLedger)
	mux.HandleFunc("GET "+pathMessages, a.exportMessages)
	mux.HandleFunc("POST "+pathMessages, a.importMessages)
	mux.HandleFunc("GET "+pathPeers, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, rt.sync.State()) })
	mux.HandleFunc("POST "+pathPreview, a.preview)
	mux.HandleFunc("GET "+pathState, a.state)
	mux.HandleFunc("GET "+pathSamples, a.samples)
	mux.HandleFunc("GET "+pathAggregates, a.aggregates)
	mux.HandleFunc("GET "+pathEvents, a.events)
	return &http.Server{
		// Each connection's role comes from the kernel (SO_PEERCRED).
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, callerKey{}, rt.roles.connPeer(c))
		},
		Handler:           a.guard(mux),
		ReadHeaderTimeout: apiReadHeader,
		ReadTimeout:       apiRead,
		IdleTimeout:       apiIdle,
		MaxHeaderBytes:    16 << 10,
	}
}

// api answers the local socket.
type api struct {
	rt *Runtime
	n  *node.Node
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// fail answers err with the status and kind its node sentinel gives.
func fail(w http.ResponseWriter, err error) {
	code, kind := http.StatusInternalServerError, "failure"
	switch {
	case errors.Is(err, household.ErrNotFound):
		code, kind = http.StatusNotFound, "not_found"
	case errors.Is(err, household.ErrInvalid), errors.Is(err, share.ErrBadWindow):
		// (the dashboard's Preview passes the protocol's window error as is)
		code, kind = http.StatusBadRequest, "invalid"
	case errors.Is(err, household.ErrIntegrity):
		code, kind = http.StatusUnprocessableEntity, "integrity"
	case errors.Is(err, ErrForbidden):
		code, kind = http.StatusForbidden, "forbidden"
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		code, kind = http.StatusRequestEntityTooLarge, "invalid"
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(errorBody{Error: err.Error(), Kind: kind})
}

// readJSON decodes a bounded JSON body into v.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			fail(w, err)
		} else {
			fail(w, fmt.Errorf("%w: request body: %v", household.ErrInvalid, err))
		}
		return false
	}
	return true
}

func (a *api) hello(w http.ResponseWriter, r *http.Request) {
	cal := a.n.Calendar()
	writeJSON(w, hello{Identity: a.n.Identity(), Location: cal.Location.String(), SlotLength: cal.Slot,
		PeerListen: a.rt.PeerAddr(), PID: os.Getpid(), Role: callerOf(r.Context()).role.String()})
}

func (a *api) neighbours(w http.ResponseWriter, r *http.Request) {
	ns, err := a.n.Neighbours(r.Context())
	if err != nil {
		fail(w, err)
		return
	}
	if ns == nil {
		ns = []household.Neighbour{}
	}
	writeJSON(w, ns)
}

func (a *api) addNeighbour(w http.ResponseWriter, r *http.Request) {
	var req neighbourReq
	if !readJSON(w, r, &req) {
		return
	}
	nb, err := a.n.AddNeighbour(r.Context(), req.Invite, req.Alias)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, nb)
}

func (a *api) removeNeighbour(w http.ResponseWriter, r *http.Request) {
	nb, err := a.n.RemoveNeighbour(r.Context(), r.PathValue("who"))
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, nb)
}

func (a *api) pledges(w http.ResponseWriter, r *http.Request) {
	ps, err := a.n.Pledges(r.Context(), r.URL.Query().Get("open") == "true")
	if err != nil {
		fail(w, err)
		return
	}
	if ps == nil {
		ps = []household.Pledge{}
	}
	writeJSON(w, ps)
}

func (a *api) pledge(w http.ResponseWriter, r *http.Request) {
	var req household.PledgeRequest
	if !readJSON(w, r, &req) {
		return
	}
	res, err := a.n.Pledge(r.Context(), req)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, res)
}

func (a *api) findPledge(w http.ResponseWriter, r *http.Request) {
	p, err := a.n.FindPledge(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, p)
}

func (a *api) answer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var p household.Pledge
	var err error
	switch verb := r.PathValue("verb"); verb {
	case "accept":
		p, err = a.n.Accept(r.Context(), id)
	case "decline":
		p, err = a.n.Decline(r.Context(), id)
	case "cancel":
		p, err = a.n.Cancel(r.Context(), id)
	default:
		err = fmt.Errorf("%w: unknown pledge action %q; use accept, decline or cancel", household.ErrNotFound, verb)
	}
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, p)
}

func (a *api) status(w http.ResponseWriter, r *http.Request) {
	st, err := a.n.Status(r.Context())
	if err != nil {
		fail(w, err)
		return
	}
	if ms, ok := a.rt.MQTTState(); ok {
		st.MQTT = &ms
	}
	writeJSON(w, toStatusWire(st))
}

func (a *api) verify(w http.ResponseWriter, r *http.Request) {
	rep, err := a.n.Verify(r.Context())
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, rep)
}

func (a *api) settle(w http.ResponseWriter, r *http.Request) {
	rep, err := a.n.Settle(r.Context())
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, rep)
}

// trailerError carries a failure that happened after a streamed answer
// had started.
const trailerError = "X-Commons-Error"

func (a *api) exportLedger(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	format := q.Get("format")
	if format != "csv" && format != "jsonl" {
		fail(w, fmt.Errorf("%w: export format %q: use csv or jsonl", household.ErrInvalid, format))
		return
	}
	w.Header().Set("Trailer", trailerError)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := a.n.ExportLedger(r.Context(), w, format, q.Get("table")); err != nil {
		w.Header().Set(trailerError, err.Error())
	}
}

func (a *api) exportMessages(w http.ResponseWriter, r *http.Request) {
	var buf bytes.Buffer
	count, err := a.n.ExportMessages(r.Context(), &buf, r.URL.Query().Get("since"))
	if err != nil {
		fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Commons-Count", strconv.Itoa(count))
	w.Write(buf.Bytes())
}

func (a *api) importMessages(w http.ResponseWriter, r *http.Request) {
	rep, err := a.n.Import(r.Context(), http.MaxBytesReader(w, r.Body, maxImportBody))
	if err != nil {
		fail(w, err)
		return
	}
	if rep.Rejected == nil {
		rep.Rejected = []household.Rejection{}
	}
	writeJSON(w, rep)
}

func (a *api) state(w http.ResponseWriter, r *http.Request) {
	st, err := a.n.State(r.Context())
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, stateWire{Home: st.Home, Live: toLiveWire(st.Live), Neighbours: st.Neighbours, Pledges: st.Pledges, Relay: st.Relay})
}

// timeParam parses an RFC 3339 query parameter.
func timeParam(r *http.Request, name string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, r.URL.Query().Get(name))
	if err != nil {
		return t, fmt.Errorf("%w: query %s: %v", household.ErrInvalid, name, err)
	}
	return t, nil
}

func (a *api) samples(w http.ResponseWriter, r *http.Request) {
	since, err := timeParam(r, "since")
	if err != nil {
		fail(w, err)
		return
	}
	ss, err := a.n.Samples(r.Context(), since)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, ss)
}

func (a *api) aggregates(w http.ResponseWriter, r *http.Request) {
	from, err := timeParam(r, "from")
	if err != nil {
		fail(w, err)
		return
	}
	to, err := timeParam(r, "to")
	if err != nil {
		fail(w, err)
		return
	}
	bs, err := a.n.Aggregates(r.Context(), from, to)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, bs)
}

func (a *api) preview(w http.ResponseWriter, r *http.Request) {
	var req household.PledgeRequest
	if !readJSON(w, r, &req) {
		return
	}
	pv, err := a.n.Preview(r.Context(), req)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, pv)
}

// events streams change notifications as NDJSON until the client goes
// away or the runtime stops. A client that does not take a line within
// apiStreamSend is disconnected; live events it missed meanwhile are
// superseded (the household side never blocks).
func (a *api) events(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{}) // a stream outlives the read timeout
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	ch := a.n.Subscribe(ctx)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	rc.Flush()
	enc := json.NewEncoder(w)
	for ev := range ch {
		rc.SetWriteDeadline(time.Now().Add(apiStreamSend))
		if err := enc.Encode(toEventWire(ev)); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}
