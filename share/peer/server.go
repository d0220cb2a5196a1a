package peer

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/commons-energy/commons/share"
	"golang.org/x/time/rate"
)

// HTTP paths of the peer protocol (version 1).
const (
	PathHeads    = "/v1/heads"    // GET: JSON list of heads
	PathFeeds    = "/v1/feeds/"   // GET /v1/feeds/{author}?after=N&limit=M: a batch
	PathMessages = "/v1/messages" // POST a batch of chain messages
	PathStatus   = "/v1/status"   // POST a batch of ephemeral status messages
)

// MaxPageBytes bounds the bytes of one range answer (the last message may
// not be cut, so one message can go beyond it): 1 MiB takes 8 s on a
// 1 Mbit/s uplink, well within the default write timeout.
const MaxPageBytes = 1 << 20

// Limits bound what one neighbour can make a box do. The zero value of a
// field means its default.
type Limits struct {
	MaxBodyBytes int64      // request body cap; default 1 MiB
	MaxBatch     int        // messages per push; default 256
	MaxPage      int        // messages per range response; default 500
	Rate         rate.Limit // requests per second per neighbour; default 20
	Burst        int        // token bucket size per neighbour; default 60
	// ByteRate bounds the pushed body bytes per second per neighbour
	// (default 64 KiB/s): the request rate alone lets full 1 MiB batches
	// through at 20 MiB/s. A neighbour's own messages are a few KiB a day;
	// catching up goes by pulls, which this does not count.
	ByteRate rate.Limit
	// ByteBurst is the byte bucket size per neighbour; default 4 MiB, and
	// never less than MaxBodyBytes.
	ByteBurst int
	// MaxConns is the floor of the authenticated connection budget: a box
	// with n neighbours serves max(MaxConns, 2n+16) neighbours'
	// connections at once (connBudget); default 64.
	MaxConns int
	// MaxConnsPerNeighbour bounds one neighbour's connections; default 4
	// (what a Client opens at most).
	MaxConnsPerNeighbour int
	// Handshake is how long a connection may take from TCP accept to a
	// finished TLS handshake with a neighbour's certificate; default 2 s.
	Handshake time.Duration
	// MaxPending is the floor of the budget of connections in their TLS
	// handshake (not yet known to be a neighbour), in all: with n
	// neighbours max(MaxPending, n+16) (pendingBudget); a new one beyond
	// it closes the oldest pending one. Default 64.
	MaxPending int
	// MaxPendingPerAddr bounds pending handshakes from one IP address; a
	// new one beyond it closes that address's oldest pending one.
	// Default 4.
	MaxPendingPerAddr int
	ReadHeader        time.Duration // request headers, after the handshake; default 5 s
	Read              time.Duration // whole request incl. body; default 30 s
	Write             time.Duration // writing the response; default 30 s
	// Idle closes a neighbour's connection unused this long; default
	// 60 s: longer than the clients' 45 s (1.5 pull intervals), so a
	// client closes first and never sends on a connection the server is
	// closing, and held connections stay within 2 per neighbour.
	Idle time.Duration
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = 1 << 20
	}
	def(&l.MaxBatch, 256)
	def(&l.MaxPage, 500)
	if l.Rate <= 0 {
		l.Rate = 20
	}
	def(&l.Burst, 60)
	if l.ByteRate <= 0 {
		l.ByteRate = 64 << 10
	}
	def(&l.ByteBurst, 4<<20)
	l.ByteBurst = max(l.ByteBurst, int(min(l.MaxBodyBytes, math.MaxInt32)))
	def(&l.MaxConns, 64)
	def(&l.MaxConnsPerNeighbour, 4)
	defd(&l.Handshake, 2*time.Second)
	def(&l.MaxPending, 64)
	def(&l.MaxPendingPerAddr, 4)
	defd(&l.ReadHeader, 5*time.Second)
	defd(&l.Read, 30*time.Second)
	defd(&l.Write, 30*time.Second)
	defd(&l.Idle, 60*time.Second)
	return l
}

// ServerConfig configures a Server.
type ServerConfig struct {
	Key ed25519.PrivateKey // the box's identity key
	// Retired are the keys this household had before a key change: a
	// neighbour that still pins one of them is answered with it (SNI),
	// until it follows the change (docs/PROTOCOL.md §15.1).
	Retired    []ed25519.PrivateKey
	Store      Store
	Neighbours Neighbours
	Verifier   Verifier
	Limits     Limits
	Logger     *slog.Logger // nil: discard
	// OnConflict, if set, is called (without blocking the request for
	// long) when a neighbour pushed a message the store refused as a chain
	// conflict, typically a gap: the Syncer's Kick pulls from that
	// neighbour to fill it.
	OnConflict func(from share.HouseholdID)
	// OnAdded, if set, is called with the messages a neighbour pushed that
	// were stored, for the node to update its views.
	OnAdded func(msgs []Message)
	// OnContact, if set, is called with the neighbour of every
	// authenticated request: the Syncer's Returned pulls at once from a
	// neighbour it was backing off from, so a box that comes back gets
	// what it missed, and says so, without waiting out the backoff.
	OnContact func(from share.HouseholdID)
}

// Stats counts what a Server did since it started.
type Stats struct {
	Requests   uint64 // requests that passed authentication
	Added      uint64 // messages stored
	Duplicates uint64 // messages already held
	Rejected   uint64 // requests answered with a 4xx status
	Limited    uint64 // requests answered 429

	// Connections: pending handshakes closed to make room for a newer
	// one from the same address (MaxPendingPerAddr) or from anywhere
	// (MaxPending), handshakes that failed or timed out (not a neighbour,
	// or too slow), and connections closed after the handshake because
	// the connection budget was full.
	ConnsRefused, ConnsEvicted, HandshakesFailed, ConnsOverBudget uint64
	// Now: connections in their handshake, and neighbours' connections
	// being served.
	PendingHandshakes, NeighbourConns int
}

// Server answers neighbours' replication requests.
type Server struct {
	cfg    ServerConfig
	lim    Limits
	self   share.HouseholdID
	log    *slog.Logger
	tlsCfg *tls.Config
	http   *http.Server

	gateMu sync.Mutex
	gates  []*gate

	nbMu    sync.Mutex
	nbAt    time.Time // when nbCount was read
	nbCount int

	mu       sync.Mutex
	limiters map[share.HouseholdID]*rate.Limiter
	bytes    map[share.HouseholdID]*rate.Limiter // pushed body bytes

	requests, added, duplicates, rejected, limited atomic.Uint64
}

// NewServer checks cfg and returns a Server that is not yet listening.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Store == nil || cfg.Neighbours == nil || cfg.Verifier == nil {
		return nil, errors.New("peer server: Store, Neighbours and Verifier are required")
	}
	cert, err := Certificate(cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("peer server: %w", err)
	}
	self, _ := idFromKey(cfg.Key.Public().(ed25519.PublicKey))
	s := &Server{
		cfg:      cfg,
		lim:      cfg.Limits.withDefaults(),
		self:     self,
		log:      cfg.Logger,
		limiters: make(map[share.HouseholdID]*rate.Limiter),
		bytes:    make(map[share.HouseholdID]*rate.Limiter),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	var retired []tls.Certificate
	for _, k := range cfg.Retired {
		c, err := Certificate(k)
		if err != nil {
			return nil, fmt.Errorf("peer server: retired key: %w", err)
		}
		retired = append(retired, c)
	}
	s.tlsCfg = ServerTLS(cert, self, cfg.Neighbours.Known, retired...)
	s.tlsCfg.NextProtos = []string{"http/1.1"}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathHeads, s.auth(s.handleHeads))
	mux.HandleFunc("GET "+PathFeeds+"{author}", s.auth(s.handleFeed))
	mux.HandleFunc("POST "+PathMessages, s.auth(s.handleMessages))
	mux.HandleFunc("POST "+PathStatus, s.auth(s.handleStatus))
	// Every other request gets a JSON error too, counted like the rest:
	// the known paths with another method 405, anything else 404.
	mux.HandleFunc(PathHeads, s.auth(s.notAllowed("GET, HEAD")))
	mux.HandleFunc(PathFeeds+"{author}", s.auth(s.notAllowed("GET, HEAD")))
	mux.HandleFunc(PathMessages, s.auth(s.notAllowed("POST")))
	mux.HandleFunc(PathStatus, s.auth(s.notAllowed("POST")))
	mux.HandleFunc("/", s.auth(s.notFound))
	s.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: s.lim.ReadHeader,
		ReadTimeout:       s.lim.Read,
		WriteTimeout:      s.lim.Write,
		IdleTimeout:       s.lim.Idle,
		MaxHeaderBytes:    16 << 10,
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){}, // HTTP/1.1 only
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	return s, nil
}

// ID returns the box's own household id.
func (s *Server) ID() share.HouseholdID { return s.self }

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	st := Stats{
		Requests:   s.requests.Load(),
		Added:      s.added.Load(),
		Duplicates: s.duplicates.Load(),
		Rejected:   s.rejected.Load(),
		Limited:    s.limited.Load(),
	}
	s.gateMu.Lock()
	defer s.gateMu.Unlock()
	for _, g := range s.gates {
		st.ConnsRefused += g.refused.Load()
		st.ConnsEvicted += g.evicted.Load()
		st.HandshakesFailed += g.failed.Load()
		st.ConnsOverBudget += g.overBudget.Load()
		p, a := g.counts()
		st.PendingHandshakes += p
		st.NeighbourConns += a
	}
	return st
}

// ConnBudget returns how many neighbours' connections the server serves
// at once now, max(Limits.MaxConns, 2 × neighbours + 16), and how many
// connections may be in their TLS handshake at once,
// max(Limits.MaxPending, neighbours + 16); the neighbour count is re-read
// at most every 2 s.
func (s *Server) ConnBudget() (conns, pending int) {
	s.nbMu.Lock()
	defer s.nbMu.Unlock()
	if s.nbAt.IsZero() || time.Since(s.nbAt) > 2*time.Second {
		s.nbCount, s.nbAt = len(s.cfg.Neighbours.List()), time.Now()
	}
	return connBudget(s.lim.MaxConns, s.nbCount), pendingBudget(s.lim.MaxPending, s.nbCount)
}

// Serve accepts TCP connections on ln and answers them until Shutdown or
// Close. Each connection must finish its TLS handshake with a neighbour's
// certificate within Limits.Handshake, in a budget of its own
// (MaxPending, MaxPendingPerAddr), before it counts against the
// neighbours' connection budget (ConnBudget, MaxConnsPerNeighbour): see
// gate.
func (s *Server) Serve(ln net.Listener) error {
	g := newGate(ln, s.tlsCfg, s.lim, s.ConnBudget)
	s.gateMu.Lock()
	s.gates = append(s.gates, g)
	s.gateMu.Unlock()
	err := s.http.Serve(g)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// ListenAndServe listens on addr (host:port) and serves until ctx is done,
// then shuts down gracefully.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("peer listen %s: %w", addr, err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(sctx); err != nil {
			s.http.Close()
		}
		return <-errc
	}
}

// Shutdown stops accepting and waits for open requests, like
// http.Server.Shutdown.
func (s *Server) Shutdown(ctx context.Context) error { return s.http.Shutdown(ctx) }

// Close closes the listener and all connections at once.
func (s *Server) Close() error { return s.http.Close() }

// limiter returns the token bucket of one neighbour.
func (s *Server) limiter(id share.HouseholdID) *rate.Limiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.limiters[id]
	if !ok {
		l = rate.NewLimiter(s.lim.Rate, s.lim.Burst)
		s.limiters[id] = l
	}
	return l
}

// byteLimiter returns the pushed-bytes token bucket of one neighbour.
func (s *Server) byteLimiter(id share.HouseholdID) *rate.Limiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.bytes[id]
	if !ok {
		l = rate.NewLimiter(s.lim.ByteRate, s.lim.ByteBurst)
		s.bytes[id] = l
	}
	return l
}

// chargeBytes takes a push body's size from the neighbour's byte budget
// before the body is read: its Content-Length, or MaxBodyBytes when it is
// not given. Over budget it answers 429 with Retry-After and returns
// false.
func (s *Server) chargeBytes(w http.ResponseWriter, r *http.Request, from share.HouseholdID) bool {
	n := r.ContentLength
	if n < 0 || n > s.lim.MaxBodyBytes {
		n = s.lim.MaxBodyBytes // readBody refuses a longer body
	}
	res := s.byteLimiter(from).ReserveN(time.Now(), int(n))
	if !res.OK() || res.Delay() <= 0 {
		return true
	}
	res.Cancel()
	s.limited.Add(1)
	retry := max(1, int(math.Ceil(res.Delay().Seconds())))
	w.Header().Set("Retry-After", strconv.Itoa(retry))
	s.fail(w, http.StatusTooManyRequests, fmt.Sprintf("rate limit: at most %d pushed bytes/s, burst %d", int64(s.lim.ByteRate), s.lim.ByteBurst))
	return false
}

// handler is an authenticated handler: from is the neighbour's id.
type handler func(w http.ResponseWriter, r *http.Request, from share.HouseholdID)

// auth identifies the neighbour by its TLS certificate, checks it is still
// known and within its rate, then calls h.
func (s *Server) auth(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			s.fail(w, http.StatusUnauthorized, "no client certificate")
			return
		}
		from, err := peerID([][]byte{r.TLS.PeerCertificates[0].Raw})
		if err != nil {
			s.fail(w, http.StatusUnauthorized, err.Error())
			return
		}
		if from != s.self && !s.cfg.Neighbours.Known(from) {
			s.fail(w, http.StatusForbidden, fmt.Sprintf("household %s is not a neighbour of this box", from.Short()))
			return
		}
		if res := s.limiter(from).Reserve(); res.Delay() > 0 {
			res.Cancel()
			s.limited.Add(1)
			retry := max(1, int(math.Ceil(res.Delay().Seconds())))
			w.Header().Set("Retry-After", strconv.Itoa(retry))
			s.fail(w, http.StatusTooManyRequests, fmt.Sprintf("rate limit: at most %g requests/s, burst %d", float64(s.lim.Rate), s.lim.Burst))
			return
		}
		s.requests.Add(1)
		if s.cfg.OnContact != nil && from != s.self {
			s.cfg.OnContact(from)
		}
		h(w, r, from)
	}
}

// errorBody is the JSON body of every error answer.
type errorBody struct {
	Error string `json:"error"`
}

func (s *Server) fail(w http.ResponseWriter, code int, reason string) {
	if code >= 400 && code < 500 && code != http.StatusTooManyRequests {
		s.rejected.Add(1)
	}
	writeJSON(w, code, errorBody{Error: reason})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// notAllowed answers a request for a known path with a method it does not
// take: 405 with the Allow header.
func (s *Server) notAllowed(allow string) handler {
	return func(w http.ResponseWriter, r *http.Request, _ share.HouseholdID) {
		w.Header().Set("Allow", allow)
		s.fail(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s: want %s", r.Method, allow))
	}
}

// notFound answers a request for a path the protocol does not have.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request, _ share.HouseholdID) {
	s.fail(w, http.StatusNotFound, fmt.Sprintf("no such path %q", r.URL.Path))
}

// headJSON is one head on the wire.
type headJSON struct {
	Author string `json:"author"`
	Seq    uint64 `json:"seq"`
}

// headsPage is the answer to GET /v1/heads?since=C: the heads that moved
// after cursor C, the cursor to ask with next, and whether this is the
// full list (C was 0 or not a cursor this box gave).
type headsPage struct {
	Cursor uint64     `json:"cursor"`
	Full   bool       `json:"full"`
	Heads  []headJSON `json:"heads"`
}

// handleHeads answers the full list as a JSON array to a request without
// since (version 1 clients), and a headsPage object to one with it.
func (s *Server) handleHeads(w http.ResponseWriter, r *http.Request, _ share.HouseholdID) {
	q := r.URL.Query()
	if !q.Has("since") {
		heads, err := s.cfg.Store.Heads(r.Context())
		if err != nil {
			s.log.Error("peer heads", "err", err)
			s.fail(w, http.StatusInternalServerError, "store unavailable")
			return
		}
		writeJSON(w, http.StatusOK, headsJSON(heads))
		return
	}
	since, err := strconv.ParseUint(q.Get("since"), 10, 64)
	if err != nil {
		s.fail(w, http.StatusBadRequest, fmt.Sprintf("since=%q: want a cursor (a number)", q.Get("since")))
		return
	}
	var page headsPage
	var heads []Head
	if hs, ok := s.cfg.Store.(HeadsSincer); ok {
		heads, page.Cursor, page.Full, err = hs.HeadsSince(r.Context(), since)
	} else {
		heads, err = s.cfg.Store.Heads(r.Context())
		page.Full = true // cursor 0: the client asks for everything again
	}
	if err != nil {
		s.log.Error("peer heads", "err", err)
		s.fail(w, http.StatusInternalServerError, "store unavailable")
		return
	}
	page.Heads = headsJSON(heads)
	writeJSON(w, http.StatusOK, page)
}

func headsJSON(heads []Head) []headJSON {
	out := make([]headJSON, len(heads))
	for i, h := range heads {
		out[i] = headJSON{Author: h.Author.String(), Seq: h.Seq}
	}
	return out
}

func (s *Server) handleFeed(w http.ResponseWriter, r *http.Request, from share.HouseholdID) {
	author, err := share.ParseHouseholdID(r.PathValue("author"))
	if err != nil {
		s.fail(w, http.StatusBadRequest, err.Error())
		return
	}
	q := r.URL.Query()
	var after uint64
	if v := q.Get("after"); v != "" {
		if after, err = strconv.ParseUint(v, 10, 64); err != nil {
			s.fail(w, http.StatusBadRequest, fmt.Sprintf("after=%q: want a sequence number", v))
			return
		}
	}
	limit := s.lim.MaxPage
	if v := q.Get("limit"); v != "" {
		// Parsed like after and since: digits only, no sign.
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n < 1 {
			s.fail(w, http.StatusBadRequest, fmt.Sprintf("limit=%q: want a positive count", v))
			return
		}
		limit = int(min(n, uint64(s.lim.MaxPage)))
	}
	// A neighbour asking for this box's feed after N holds it up to N.
	if a, ok := s.cfg.Store.(Acker); ok && author == s.self && after > 0 && from != s.self {
		if err := a.RecordAck(r.Context(), from, after); err != nil {
			s.log.Warn("record a neighbour's acknowledgement", "peer", from.Short(), "err", err)
		}
	}
	raws, err := s.cfg.Store.Range(r.Context(), author, after, limit)
	if err != nil {
		s.log.Error("peer range", "author", author.Short(), "err", err)
		s.fail(w, http.StatusInternalServerError, "store unavailable")
		return
	}
	// Cut the page at MaxPageBytes so a slow uplink sends it well within
	// the write timeout; the client asks again from where it ended.
	size := 0
	for i, raw := range raws {
		size += 4 + len(raw)
		if size > MaxPageBytes && i > 0 {
			raws = raws[:i]
			break
		}
	}
	w.Header().Set("Content-Type", BatchContentType)
	w.Header().Set("X-Commons-Count", strconv.Itoa(len(raws)))
	w.WriteHeader(http.StatusOK)
	if err := WriteBatch(w, raws); err != nil {
		s.log.Debug("peer range write", "err", err)
	}
}

// PushResult is the JSON answer to a push.
type PushResult struct {
	Added      int    `json:"added"`
	Duplicates int    `json:"duplicates"`
	Error      string `json:"error,omitempty"`
}

// readBody reads a bounded batch body, answering 413/400 itself.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([][]byte, bool) {
	if ct := r.Header.Get("Content-Type"); ct != BatchContentType {
		s.fail(w, http.StatusUnsupportedMediaType, fmt.Sprintf("content type %q: want %s", ct, BatchContentType))
		return nil, false
	}
	if r.ContentLength > s.lim.MaxBodyBytes {
		s.fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body of %d bytes is over the limit of %d", r.ContentLength, s.lim.MaxBodyBytes))
		return nil, false
	}
	raws, err := ReadBatch(http.MaxBytesReader(w, r.Body, s.lim.MaxBodyBytes), s.lim.MaxBatch)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		s.fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body is over the limit of %d bytes", s.lim.MaxBodyBytes))
		return nil, false
	case errors.Is(err, errTooMany):
		s.fail(w, http.StatusRequestEntityTooLarge, err.Error())
		return nil, false
	case errors.Is(err, ErrBatch):
		s.fail(w, http.StatusBadRequest, err.Error())
		return nil, false
	case err != nil:
		s.fail(w, http.StatusBadRequest, fmt.Sprintf("reading body: %v", err))
		return nil, false
	case len(raws) == 0:
		s.fail(w, http.StatusBadRequest, "empty batch")
		return nil, false
	}
	return raws, true
}

func (s *Server) handleMessages(w http.ResponseWriter, r *http.Request, from share.HouseholdID) {
	if !s.chargeBytes(w, r, from) {
		return
	}
	raws, ok := s.readBody(w, r)
	if !ok {
		return
	}
	res := accept(r.Context(), s.self, s.cfg.Verifier, s.cfg.Neighbours, s.cfg.Store, raws, nil)
	s.added.Add(uint64(res.Added))
	s.duplicates.Add(uint64(res.Duplicates))
	if len(res.stored) > 0 && s.cfg.OnAdded != nil {
		s.cfg.OnAdded(res.stored)
	}
	if res.err != nil {
		if res.code == http.StatusConflict && s.cfg.OnConflict != nil {
			s.cfg.OnConflict(from)
		}
		if res.code >= 500 && res.code != http.StatusInsufficientStorage {
			s.log.Error("peer push: store failed", "from", from.Short(), "err", res.err)
			s.fail(w, res.code, "store unavailable")
			return
		}
		// Debug, not Info: a misbehaving neighbour must not fill the SD
		// card with log lines; Stats counts the rejections.
		s.log.Debug("peer push rejected", "from", from.Short(), "code", res.code, "err", res.err)
		s.rejected.Add(1)
		writeJSON(w, res.code, PushResult{Added: res.Added, Duplicates: res.Duplicates, Error: res.err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, PushResult{Added: res.Added, Duplicates: res.Duplicates})
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request, from share.HouseholdID) {
	if !s.chargeBytes(w, r, from) {
		return
	}
	raws, ok := s.readBody(w, r)
	if !ok {
		return
	}
	msgs, code, err := verifyAll(s.self, s.cfg.Verifier, s.cfg.Neighbours, raws, true, nil)
	if err != nil {
		s.log.Debug("peer status rejected", "from", from.Short(), "code", code, "err", err)
		s.fail(w, code, err.Error())
		return
	}
	for i, m := range msgs {
		if err := s.cfg.Store.PutStatus(r.Context(), m); err != nil {
			code := statusOf(err)
			if !errors.Is(err, ErrConflict) && !errors.Is(err, ErrForbidden) && !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrStorage) {
				s.log.Error("peer status store", "err", err)
				s.fail(w, http.StatusInternalServerError, "store unavailable")
				return
			}
			s.fail(w, code, fmt.Sprintf("message %d: %v", i, err))
			return
		}
	}
	writeJSON(w, http.StatusOK, PushResult{Added: len(msgs)})
}

// acceptResult is the outcome of accepting a batch.
type acceptResult struct {
	PushResult
	stored []Message
	last   uint64 // seq of the batch's last message, once verified
	code   int    // HTTP status for err
	err    error  // nil: all added or duplicates
}

// verifyAll verifies every message of a batch and checks its author is the
// box itself or a known neighbour. Any failure rejects the whole batch
// before anything is stored.
//
// If author is non-nil every message must be by that author, in strictly
// increasing seq order (a range answer).
func verifyAll(self share.HouseholdID, v Verifier, nb Neighbours, raws [][]byte, ephemeral bool, author *share.HouseholdID) ([]Message, int, error) {
	verified, errs := verifyParallel(v, raws)
	msgs := make([]Message, 0, len(raws))
	for i := range raws {
		m, err := verified[i], errs[i]
		if err != nil {
			return nil, http.StatusBadRequest, fmt.Errorf("message %d: %w", i, err)
		}
		if m.Author != self && !nb.Known(m.Author) && !startsSuccession(m.Raw) {
			return nil, http.StatusForbidden, fmt.Errorf("message %d: author %s is not a known neighbour", i, m.Author.Short())
		}
		if m.Ephemeral != ephemeral {
			if ephemeral {
				return nil, http.StatusBadRequest, fmt.Errorf("message %d: a chain message where a status message was expected", i)
			}
			return nil, http.StatusBadRequest, fmt.Errorf("message %d: a status message where a chain message was expected", i)
		}
		if author != nil {
			if m.Author != *author {
				return nil, http.StatusBadRequest, fmt.Errorf("message %d: by %s, asked for %s", i, m.Author.Short(), author.Short())
			}
			if len(msgs) > 0 && m.Seq <= msgs[len(msgs)-1].Seq {
				return nil, http.StatusBadRequest, fmt.Errorf("message %d: seq %d is out of order", i, m.Seq)
			}
		}
		msgs = append(msgs, m)
	}
	return msgs, 0, nil
}

// parallelMin is the batch size from which signatures are checked on all
// cores: a week of catch-up arrives in pages of hundreds.
const parallelMin = 32

// verifyParallel runs v.Verify on every message, on all cores for large
// batches.
func verifyParallel(v Verifier, raws [][]byte) ([]Message, []error) {
	msgs := make([]Message, len(raws))
	errs := make([]error, len(raws))
	workers := min(runtime.GOMAXPROCS(0), len(raws)/parallelMin+1)
	if workers <= 1 {
		for i, raw := range raws {
			msgs[i], errs[i] = v.Verify(raw)
		}
		return msgs, errs
	}
	var wg sync.WaitGroup
	var next atomic.Int64
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(raws) {
					return
				}
				msgs[i], errs[i] = v.Verify(raws[i])
			}
		}()
	}
	wg.Wait()
	return msgs, errs
}

// accept verifies a batch of chain messages and appends them to the store.
// Used for pushes received and for pages pulled.
// author is as for verifyAll.
func accept(ctx context.Context, self share.HouseholdID, v Verifier, nb Neighbours, st Store, raws [][]byte, author *share.HouseholdID) acceptResult {
	var res acceptResult
	msgs, code, err := verifyAll(self, v, nb, raws, false, author)
	if err != nil {
		res.code, res.err = code, err
		return res
	}
	res.last = msgs[len(msgs)-1].Seq
	results, err := st.Append(ctx, msgs)
	if err != nil {
		res.code, res.err = http.StatusInternalServerError, fmt.Errorf("store: %w", err)
		return res
	}
	if len(results) != len(msgs) {
		res.code, res.err = http.StatusInternalServerError, fmt.Errorf("store answered %d results for %d messages", len(results), len(msgs))
		return res
	}
	for i, r := range results {
		switch r.Outcome {
		case Added:
			res.Added++
			res.stored = append(res.stored, msgs[i])
		case Duplicate:
			res.Duplicates++
		default:
			if res.err == nil {
				res.code = statusOf(r.Err)
				res.err = fmt.Errorf("message %d (%s seq %d): %w", i, msgs[i].Author.Short(), msgs[i].Seq, r.Err)
			}
		}
	}
	return res
}

// statusOf maps a store rejection to its HTTP status.
func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrConflict):
		return http.StatusConflict
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, ErrStorage):
		return http.StatusInsufficientStorage
	}
	return http.StatusBadRequest
}

// startsSuccession reports whether raw is the first message of a new key
// of some household (docs/PROTOCOL.md §1.1): it is taken from a key not
// known yet, and the store admits it only when it continues a neighbour's
// key.
func startsSuccession(raw []byte) bool {
	m, err := share.Parse(raw)
	return err == nil && m.StartsSuccession()
}
