package daemon

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/commons-energy/commons/share"
	"github.com/commons-energy/commons/share/node"
)

// This file runs the exchanges of docs/PROTOCOL.md §15.7 against a real
// daemon over real sockets. Its client is built from crypto/tls and
// net/http alone, following §15.1, and never from share/peer: the point is
// that the document suffices to talk to a Go box. Only the box under test
// is set up with the Go packages (its key, community and neighbour come
// from the §14 vectors).

// docBlock is one fenced block of PROTOCOL.md: its fields in order.
type docBlock struct {
	kind   string
	fields [][2]string
}

// get returns the first value of field k, and whether there is one.
func (b docBlock) get(k string) (string, bool) {
	for _, f := range b.fields {
		if f[0] == k {
			return f[1], true
		}
	}
	return "", false
}

// all returns every value of field k.
func (b docBlock) all(k string) []string {
	var out []string
	for _, f := range b.fields {
		if f[0] == k {
			out = append(out, f[1])
		}
	}
	return out
}

// name is the block's own name: the value of the field named like its kind.
func (b docBlock) name() string {
	v, _ := b.get(b.kind)
	return v
}

// docBlocks reads the fenced blocks of the given kinds from the protocol
// document: "key: value" lines, continued by lines indented two spaces
// (as TestProtocolVectors reads §14).
func docBlocks(t *testing.T, kinds ...string) map[string][]docBlock {
	t.Helper()
	path := filepath.Join("..", "..", "docs", "PROTOCOL.md")
	if d := os.Getenv("COMMONS_DOCS"); d != "" {
		path = filepath.Join(d, "PROTOCOL.md")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v (set COMMONS_DOCS to the docs folder)", path, err)
	}
	defer f.Close()
	out := map[string][]docBlock{}
	var cur *docBlock
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case cur == nil && strings.HasPrefix(trimmed, "```"):
			kind := strings.TrimPrefix(trimmed, "```")
			for _, k := range kinds {
				if k == kind {
					cur = &docBlock{kind: kind}
				}
			}
		case cur != nil && trimmed == "```":
			out[cur.kind] = append(out[cur.kind], *cur)
			cur = nil
		case cur != nil && strings.HasPrefix(line, "  ") && len(cur.fields) > 0:
			cur.fields[len(cur.fields)-1][1] += trimmed
		case cur != nil:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				t.Fatalf("%s: bad %s line %q", path, cur.kind, line)
			}
			cur.fields = append(cur.fields, [2]string{k, strings.TrimSpace(v)})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// householdText is the text form of a household id (§1): base32, lower
// case, no padding.
func householdText(pub ed25519.PublicKey) string {
	return base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding).EncodeToString(pub)
}

// conformanceCert makes the certificate of §15.1 for the key pub, signed
// by signer (self-signed when signer is pub's own key), with crypto/x509
// only.
func conformanceCert(t *testing.T, pub crypto.PublicKey, signer crypto.Signer) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "commons conformance"},
		NotBefore:             time.Unix(0, 0),
		NotAfter:              time.Unix(0, 0).AddDate(200, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// clientCert returns the certificate a §15.7 client presents: nil for
// "none"; for a household name its self-signed certificate; and the wrong
// ones of §15.1: "ecdsa" (a self-signed ECDSA P-256 certificate),
// "alice-by-stranger" (Alice's key, signed by the stranger's) and
// "alice-chain" (Alice's certificate followed by the stranger's).
func clientCert(t *testing.T, name string, keys map[string]ed25519.PrivateKey) *tls.Certificate {
	t.Helper()
	own := func(n string) []byte {
		return conformanceCert(t, keys[n].Public(), keys[n])
	}
	switch name {
	case "none":
		return nil
	case "ecdsa":
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return &tls.Certificate{Certificate: [][]byte{conformanceCert(t, k.Public(), k)}, PrivateKey: k}
	case "alice-by-stranger":
		der := conformanceCert(t, keys["alice"].Public(), keys["stranger"])
		return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: keys["alice"]}
	case "alice-chain":
		return &tls.Certificate{Certificate: [][]byte{own("alice"), own("stranger")}, PrivateKey: keys["alice"]}
	}
	if _, ok := keys[name]; !ok {
		t.Fatalf("unknown client %q", name)
	}
	return &tls.Certificate{Certificate: [][]byte{own(name)}, PrivateKey: keys[name]}
}

// pinnedClient is an HTTP/1.1 client over TLS 1.3 that presents cert
// (none when nil) and pins the server to the household key want (§15.1).
// It keeps one connection.
func pinnedClient(cert *tls.Certificate, want ed25519.PublicKey) *http.Client {
	tr := &http.Transport{
		TLSClientConfig: pinnedTLS(cert, want),
		TLSNextProto:    map[string]func(string, *tls.Conn) http.RoundTripper{}, // HTTP/1.1 only
		MaxConnsPerHost: 1,
		IdleConnTimeout: 45 * time.Second,
		// Requests with Expect: 100-continue wait this long for the
		// box's refusal before they send their body.
		ExpectContinueTimeout: 5 * time.Second,
		DisableCompression:    true,
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// pinnedTLS is the TLS configuration of §15.1 for a client that presents
// cert (none when nil) and pins the server to the household key want.
func pinnedTLS(cert *tls.Certificate, want ed25519.PublicKey) *tls.Config {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		NextProtos:         []string{"http/1.1"},
		InsecureSkipVerify: true, // no CA: VerifyConnection pins the key
		VerifyConnection: func(cs tls.ConnectionState) error {
			if cs.Version != tls.VersionTLS13 || cs.NegotiatedProtocol != "http/1.1" {
				return fmt.Errorf("TLS version %x, ALPN %q: want TLS 1.3, http/1.1", cs.Version, cs.NegotiatedProtocol)
			}
			if len(cs.PeerCertificates) != 1 {
				return fmt.Errorf("the box presented %d certificates, want 1", len(cs.PeerCertificates))
			}
			c := cs.PeerCertificates[0]
			pub, ok := c.PublicKey.(ed25519.PublicKey)
			if !ok {
				return fmt.Errorf("the box's key is %T, want Ed25519", c.PublicKey)
			}
			if err := c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature); err != nil {
				return fmt.Errorf("the box's certificate is not self-signed: %w", err)
			}
			if !pub.Equal(want) {
				return fmt.Errorf("the box is household %s, want %s", householdText(pub), householdText(want))
			}
			return nil
		},
	}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return cfg
}

// bodyExpr evaluates a body expression of §15.7: frame(V, …), hex(H),
// repeat(N, H), zeros(N), zeroframes(N, L) or empty.
func bodyExpr(t *testing.T, expr string, msgs map[string][]byte) []byte {
	t.Helper()
	if expr == "empty" {
		return []byte{}
	}
	fn, rest, ok := strings.Cut(expr, "(")
	if !ok || !strings.HasSuffix(rest, ")") {
		t.Fatalf("body %q: want frame(…), hex(…), repeat(…) or zeros(…)", expr)
	}
	args := strings.Split(strings.TrimSuffix(rest, ")"), ",")
	for i := range args {
		args[i] = strings.TrimSpace(args[i])
	}
	decode := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatalf("body %q: %v", expr, err)
		}
		return b
	}
	count := func(s string) int {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			t.Fatalf("body %q: bad count %q", expr, s)
		}
		return n
	}
	switch {
	case fn == "frame":
		var out []byte
		for _, name := range args {
			raw, ok := msgs[name]
			if !ok {
				t.Fatalf("body %q: no message vector %q in §14", expr, name)
			}
			out = binary.BigEndian.AppendUint32(out, uint32(len(raw)))
			out = append(out, raw...)
		}
		return out
	case fn == "hex" && len(args) == 1:
		return decode(args[0])
	case fn == "repeat" && len(args) == 2:
		return bytes.Repeat(decode(args[1]), count(args[0]))
	case fn == "zeros" && len(args) == 1:
		return make([]byte, count(args[0]))
	case fn == "zeroframes" && len(args) == 2:
		frame := binary.BigEndian.AppendUint32(nil, uint32(count(args[1])))
		frame = append(frame, make([]byte, count(args[1]))...)
		return bytes.Repeat(frame, count(args[0]))
	}
	t.Fatalf("body %q: unknown expression", expr)
	return nil
}

// bindings are the values named in exchanges: household ids, and values
// bound by earlier answers.
type bindings map[string]string

// expand replaces {NAME} in s by its bound value.
func (b bindings) expand(t *testing.T, s string) string {
	t.Helper()
	var out strings.Builder
	for {
		i := strings.Index(s, "{")
		if i < 0 {
			out.WriteString(s)
			return out.String()
		}
		j := strings.Index(s[i:], "}")
		if j < 0 {
			t.Fatalf("%q: unclosed {", s)
		}
		name := s[i+1 : i+j]
		v, ok := b[name]
		if !ok {
			t.Fatalf("%q: {%s} is not bound", s, name)
		}
		out.WriteString(s[:i])
		out.WriteString(v)
		s = s[i+j+1:]
	}
}

// matchJSON matches an answer against the expected JSON of §15.7, binding
// "{NAME}" placeholders in b.
func matchJSON(exp, got any, b bindings) error {
	if s, ok := exp.(string); ok && strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
		var val string
		switch g := got.(type) {
		case json.Number:
			val = g.String()
		case string:
			val = g
		}
		if val == "" {
			return fmt.Errorf("%v: want an integer or a non-empty string for %s", got, s)
		}
		name := s[1 : len(s)-1]
		if name == "_" {
			return nil
		}
		if v, ok := b[name]; ok && v != val {
			return fmt.Errorf("%s: got %s, bound to %s before", s, val, v)
		}
		b[name] = val
		return nil
	}
	switch e := exp.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Errorf("got %v, want an object", got)
		}
		if len(g) != len(e) {
			return fmt.Errorf("object %v has %d keys, want %d", got, len(g), len(e))
		}
		for k, ev := range e {
			gv, ok := g[k]
			if !ok {
				return fmt.Errorf("object %v has no %q", got, k)
			}
			if err := matchJSON(ev, gv, b); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
		}
		return nil
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(e) {
			return fmt.Errorf("got %v, want an array of %d", got, len(e))
		}
		used := make([]bool, len(g))
	elems:
		for _, ev := range e {
			for i, gv := range g {
				if used[i] {
					continue
				}
				try := bindings{}
				for k, v := range b {
					try[k] = v
				}
				if matchJSON(ev, gv, try) == nil {
					used[i] = true
					for k, v := range try {
						b[k] = v
					}
					continue elems
				}
			}
			return fmt.Errorf("no element of %v matches %v", got, ev)
		}
		return nil
	}
	if !reflect.DeepEqual(exp, got) {
		return fmt.Errorf("got %v, want %v", got, exp)
	}
	return nil
}

func decodeJSON(data []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, errors.New("more than one JSON value")
	}
	return v, nil
}

// checkBatch checks a feed answer's framing against §15.2: as many
// messages as X-Commons-Count, by the author asked for, with seq above
// after, in increasing order.
func checkBatch(body []byte, count string, reqURL *url.URL) error {
	author := strings.TrimPrefix(reqURL.Path, "/v1/feeds/")
	after, _ := strconv.ParseUint(reqURL.Query().Get("after"), 10, 64)
	n := 0
	last := after
	for len(body) > 0 {
		if len(body) < 4 {
			return fmt.Errorf("message %d: truncated length", n)
		}
		l := binary.BigEndian.Uint32(body)
		if l < 222 || l > 8414 || int(l) > len(body)-4 {
			return fmt.Errorf("message %d: length %d of %d bytes left", n, l, len(body)-4)
		}
		raw := body[4 : 4+l]
		body = body[4+l:]
		if got := householdText(raw[38:70]); !strings.EqualFold(got, author) {
			return fmt.Errorf("message %d: by %s, asked for %s", n, got, author)
		}
		seq := binary.BigEndian.Uint64(raw[70:78])
		if seq <= last {
			return fmt.Errorf("message %d: seq %d after %d", n, seq, last)
		}
		last = seq
		n++
	}
	if strconv.Itoa(n) != count {
		return fmt.Errorf("%d messages, X-Commons-Count %q", n, count)
	}
	return nil
}

// exchangeResult is what one request got.
type exchangeResult struct {
	status int
	header http.Header
	body   []byte
	err    error // transport or TLS error: no answer
}

// send makes the request of a block.
func send(t *testing.T, c *http.Client, addr string, blk docBlock, b bindings, msgs map[string][]byte) (*http.Request, []byte, exchangeResult) {
	t.Helper()
	line, _ := blk.get("request")
	method, target, ok := strings.Cut(b.expand(t, line), " ")
	if !ok {
		t.Fatalf("%s: request %q: want METHOD PATH", blk.name(), line)
	}
	var body []byte
	if expr, ok := blk.get("body"); ok {
		body = bodyExpr(t, expr, msgs)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, "https://"+addr+target, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("%s: %v", blk.name(), err)
	}
	req.ContentLength = int64(len(body))
	if len(body) == 0 {
		req.Body = http.NoBody // Content-Length: 0 on a POST
	}
	for _, h := range blk.all("header") {
		k, v, ok := strings.Cut(h, ":")
		if !ok {
			t.Fatalf("%s: header %q", blk.name(), h)
		}
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	resp, err := c.Do(req)
	if err != nil {
		return req, body, exchangeResult{err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return req, body, exchangeResult{err: err}
	}
	return req, body, exchangeResult{status: resp.StatusCode, header: resp.Header, body: data}
}

// checkAnswer compares an answer with the expectations of a block.
func checkAnswer(t *testing.T, blk docBlock, req *http.Request, res exchangeResult, b bindings, msgs map[string][]byte) {
	t.Helper()
	want, _ := blk.get("status")
	if strconv.Itoa(res.status) != want {
		t.Errorf("%s: status %d %.300q, want %s", blk.name(), res.status, res.body, want)
		return
	}
	for _, h := range blk.all("answer-header") {
		k, v, _ := strings.Cut(h, ":")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		got := res.header.Get(k)
		if (v == "{_}" && got == "") || (v != "{_}" && got != v) {
			t.Errorf("%s: answer header %s: %q, want %q", blk.name(), k, got, v)
		}
	}
	if res.status == http.StatusTooManyRequests {
		if s, err := strconv.Atoi(res.header.Get("Retry-After")); err != nil || s < 1 {
			t.Errorf("%s: Retry-After %q, want whole seconds ≥ 1", blk.name(), res.header.Get("Retry-After"))
		}
	}
	if res.status != http.StatusOK {
		// §15.2: every refusal is JSON {"error":TEXT}, a newline after it.
		if ct := res.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: a %d answer of type %q, want application/json", blk.name(), res.status, ct)
		}
		if !bytes.HasSuffix(res.body, []byte("}\n")) {
			t.Errorf("%s: error body %q is not a JSON object and a newline", blk.name(), res.body)
		}
	}
	if exp, ok := blk.get("json"); ok {
		e, err := decodeJSON([]byte(exp))
		if err != nil {
			t.Fatalf("%s: expected json: %v", blk.name(), err)
		}
		g, err := decodeJSON(res.body)
		if err != nil {
			t.Errorf("%s: answer %q is not JSON: %v", blk.name(), res.body, err)
		} else if err := matchJSON(e, g, b); err != nil {
			t.Errorf("%s: answer %s: %v", blk.name(), res.body, err)
		}
	}
	if exp, ok := blk.get("answer"); ok {
		if w := bodyExpr(t, exp, msgs); !bytes.Equal(res.body, w) {
			t.Errorf("%s: answer of %d bytes, want %s (%d bytes)", blk.name(), len(res.body), exp, len(w))
		}
	}
	if res.status == http.StatusOK && res.header.Get("Content-Type") == "application/x-commons-messages" {
		if err := checkBatch(res.body, res.header.Get("X-Commons-Count"), req.URL); err != nil {
			t.Errorf("%s: feed answer: %v", blk.name(), err)
		}
	}
}

// rawConn is a connection of its own to the box, outside any http.Client.
type rawConn struct {
	tc *tls.Conn
	br *bufio.Reader
}

// dialRaw opens a pinned TLS connection to addr and sends request on it;
// ok says whether the box answered it. The connection stays open.
func dialRaw(addr string, cfg *tls.Config, request string) (*rawConn, bool) {
	d := &tls.Dialer{Config: cfg}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, false
	}
	rc := &rawConn{tc: c.(*tls.Conn), br: bufio.NewReader(c)}
	method, target, _ := strings.Cut(request, " ")
	rc.tc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(rc.tc, "%s %s HTTP/1.1\r\nHost: box\r\n\r\n", method, target); err != nil {
		return rc, false
	}
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		return rc, false
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	rc.tc.SetDeadline(time.Time{})
	return rc, err == nil
}

// checkConnections runs a connections block of §15.7: the client opens
// connections, each answered, until the box closes one without an
// answer; exactly max must have been answered, and once the client
// closes one a new one is answered again. Connections the client had
// open before are closed first; until the box has seen them close, fewer
// than max are answered, so it tries again until a deadline.
func checkConnections(t *testing.T, blk docBlock, addr string, cfg *tls.Config, s *spent) {
	t.Helper()
	mv, _ := blk.get("max")
	limit, err := strconv.Atoi(mv)
	if err != nil || limit < 1 {
		t.Fatalf("connections %s: max %q", blk.name(), mv)
	}
	request, _ := blk.get("request")
	deadline := time.Now().Add(20 * time.Second)
	for {
		var open []*rawConn
		answered := 0
		for range limit + 1 {
			rc, ok := dialRaw(addr, cfg, request)
			if rc != nil {
				open = append(open, rc)
			}
			if !ok {
				break
			}
			answered++
			s.requests++
		}
		closeAll := func() {
			for _, rc := range open {
				rc.tc.Close()
			}
		}
		if answered > limit {
			closeAll()
			t.Fatalf("connections %s: the box answered %d connections of one household, want at most %d", blk.name(), answered, limit)
		}
		if answered == limit {
			// Free one: the box answers a new connection again once it
			// has seen it close.
			open[0].tc.Close()
			for {
				rc, ok := dialRaw(addr, cfg, request)
				if rc != nil {
					open = append(open, rc)
				}
				if ok {
					s.requests++
					break
				}
				if time.Now().After(deadline) {
					closeAll()
					t.Fatalf("connections %s: no new connection answered after one of %d closed", blk.name(), limit)
				}
				time.Sleep(20 * time.Millisecond)
			}
			closeAll()
			return
		}
		closeAll()
		if time.Now().After(deadline) {
			t.Fatalf("connections %s: only %d connections answered, want %d", blk.name(), answered, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkHandshakeDeadline runs a handshake block of §15.7: a TCP
// connection that never starts its TLS handshake is closed by the box
// after the given seconds, not before and not much later.
func checkHandshakeDeadline(t *testing.T, blk docBlock, addr string) {
	t.Helper()
	sv, _ := blk.get("seconds")
	secs, err := strconv.ParseFloat(sv, 64)
	if err != nil || secs <= 0 {
		t.Fatalf("handshake %s: seconds %q", blk.name(), sv)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	began := time.Now()
	wait := time.Duration(secs*float64(time.Second)) + 10*time.Second
	c.SetReadDeadline(began.Add(wait))
	_, err = c.Read(make([]byte, 1))
	elapsed := time.Since(began)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("handshake %s: the box kept a silent connection open %v", blk.name(), wait)
	}
	// Not before the deadline; after it, within a margin for a loaded
	// machine (the box closes it from a timer of its own).
	if elapsed.Seconds() < secs || elapsed.Seconds() > secs+2 {
		t.Errorf("handshake %s: closed after %v (%v), want %g s", blk.name(), elapsed, err, secs)
	}
}

// checkFields fails on a block with a field not in known (a typo would
// silently check nothing), or without a client, a request and either
// expect or a tls-error.
func checkFields(t *testing.T, blocks []docBlock, expect string, known ...string) {
	t.Helper()
	for _, blk := range blocks {
		for _, f := range blk.fields {
			if !slices.Contains(known, f[0]) {
				t.Fatalf("%s %q: unknown field %q", blk.kind, blk.name(), f[0])
			}
		}
		_, hasClient := blk.get("client")
		_, hasRequest := blk.get("request")
		_, hasExpect := blk.get(expect)
		_, hasAlert := blk.get("tls-error")
		if !hasClient || !hasRequest || hasExpect == hasAlert {
			t.Fatalf("%s %q: want a client, a request and either %s or tls-error", blk.kind, blk.name(), expect)
		}
	}
}

// spent is what a client's requests took from its token buckets (§15.4).
type spent struct{ requests, bytes int64 }

// charge books an answered request against the buckets.
func (s *spent) charge(req *http.Request, status int, body []byte) {
	if status == http.StatusTooManyRequests {
		return
	}
	s.requests++
	if req.Method == http.MethodPost && (req.URL.Path == "/v1/messages" || req.URL.Path == "/v1/status") {
		s.bytes += min(int64(len(body)), 1<<20)
	}
}

// TestTransportConformance runs the exchanges and limits of
// docs/PROTOCOL.md §15.7 against a real daemon: the household "key bob"
// of §14 with the neighbour "invite alice", its clock at
// 2025-06-01T12:00:00Z.
func TestTransportConformance(t *testing.T) {
	blocks := docBlocks(t, "vector", "exchange", "limit", "connections", "handshake")
	for _, kind := range []string{"exchange", "limit", "connections", "handshake"} {
		if len(blocks[kind]) == 0 {
			t.Fatalf("PROTOCOL.md has no %s blocks", kind)
		}
	}
	checkFields(t, blocks["exchange"], "status", "exchange", "client", "request", "header", "body", "status", "answer-header", "json", "answer", "tls-error")
	checkFields(t, blocks["limit"], "status", "limit", "client", "request", "header", "body", "burst", "rate", "cost", "status", "answer-header", "json")
	checkFields(t, blocks["connections"], "max", "connections", "client", "request", "max")
	vectors := map[string]docBlock{}
	msgs := map[string][]byte{}
	for _, v := range blocks["vector"] {
		vectors[v.name()] = v
		if m, ok := v.get("message"); ok {
			raw, err := hex.DecodeString(m)
			if err != nil {
				t.Fatalf("vector %s: %v", v.name(), err)
			}
			msgs[v.name()] = raw
		}
	}
	keyOf := func(name string) ed25519.PrivateKey {
		s, _ := vectors["key "+name].get("seed")
		seed, err := hex.DecodeString(s)
		if err != nil || len(seed) != ed25519.SeedSize {
			t.Fatalf("vector key %s: seed %q", name, s)
		}
		return ed25519.NewKeyFromSeed(seed)
	}
	strangerSeed := make([]byte, ed25519.SeedSize)
	for i := range strangerSeed {
		strangerSeed[i] = 0x40 + byte(i)
	}
	keys := map[string]ed25519.PrivateKey{"alice": keyOf("alice"), "bob": keyOf("bob"), "stranger": ed25519.NewKeyFromSeed(strangerSeed)}
	b := bindings{}
	for name, k := range keys {
		b[name] = householdText(k.Public().(ed25519.PublicKey))
	}
	b["ALICE"] = strings.ToUpper(b["alice"])
	for _, name := range []string{"alice", "bob"} {
		if want, _ := vectors["key "+name].get("household"); b[name] != want {
			t.Fatalf("household %s: %s from the seed, %s in §14", name, b[name], want)
		}
	}

	// The box under test: Bob, in the §14 community, Alice's neighbour.
	var man struct {
		Name string `json:"name"`
		Slot int    `json:"slot_len_s"`
		Key  string `json:"key"`
	}
	ms, _ := vectors["community"].get("manifest")
	if err := json.Unmarshal([]byte(ms), &man); err != nil {
		t.Fatalf("vector community: %v", err)
	}
	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return at }
	home, err := node.ResolveHome(filepath.Join(t.TempDir(), "bob"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(home.ConfigDir, 0o700); err != nil {
		t.Fatal(err)
	}
	bob, err := share.IdentityFromSeed(keys["bob"].Seed())
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.Save(home.KeyPath()); err != nil {
		t.Fatal(err)
	}
	cfg := node.DefaultConfig("Bob")
	cfg.Listen, cfg.Timezone = freeAddr(t), "UTC"
	cfg.Community.Name, cfg.Community.SlotSeconds, cfg.Community.AllocationKey = man.Name, man.Slot, man.Key
	ctx := context.Background()
	if _, err := node.InitWithClock(ctx, home, cfg, clock); err != nil {
		t.Fatal(err)
	}
	n, err := node.Open(ctx, home, node.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := vectors["community"].get("community"); n.Manifest().ID().String() != want {
		t.Fatalf("the box's community is %s, §14 says %s", n.Manifest().ID(), want)
	}
	invite, _ := vectors["invite alice"].get("invite")
	if _, err := n.AddNeighbour(ctx, invite, ""); err != nil {
		t.Fatal(err)
	}
	n.Close()
	r := start(t, home, Options{Now: clock})
	addr := r.rt.PeerAddr()

	boxKey := keys["bob"].Public().(ed25519.PublicKey)
	clients := map[string]*http.Client{}
	client := func(name string) *http.Client {
		if c, ok := clients[name]; ok {
			return c
		}
		c := pinnedClient(clientCert(t, name, keys), boxKey)
		t.Cleanup(c.CloseIdleConnections)
		clients[name] = c
		return c
	}
	used := map[string]*spent{}
	spentBy := func(name string) *spent {
		if used[name] == nil {
			used[name] = &spent{}
		}
		return used[name]
	}

	for _, blk := range blocks["exchange"] {
		who, _ := blk.get("client")
		req, body, res := send(t, client(who), addr, blk, b, msgs)
		if alert, ok := blk.get("tls-error"); ok {
			if res.err == nil {
				t.Errorf("%s: answered %d %s, want the TLS alert %s", blk.name(), res.status, res.body, alert)
			} else if !strings.Contains(res.err.Error(), "tls: "+alert) {
				t.Errorf("%s: %v, want the TLS alert %s", blk.name(), res.err, alert)
			}
			continue
		}
		if res.err != nil {
			t.Errorf("%s: %v", blk.name(), res.err)
			continue
		}
		spentBy(who).charge(req, res.status, body)
		checkAnswer(t, blk, req, res, b, msgs)
	}

	t.Logf("%d exchanges of §15.7 run", len(blocks["exchange"]))

	for _, blk := range blocks["connections"] {
		who, _ := blk.get("client")
		client(who).CloseIdleConnections()
		checkConnections(t, blk, addr, pinnedTLS(clientCert(t, who, keys), boxKey), spentBy(who))
	}
	for _, blk := range blocks["handshake"] {
		checkHandshakeDeadline(t, blk, addr)
	}

	for _, blk := range blocks["limit"] {
		num := func(k string) float64 {
			v, _ := blk.get(k)
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f <= 0 {
				t.Fatalf("limit %s: %s %q", blk.name(), k, v)
			}
			return f
		}
		burst, rate, cost := num("burst"), num("rate"), num("cost")
		who, _ := blk.get("client")
		s := spentBy(who)
		took := float64(s.requests)
		if cost > 1 {
			took = float64(s.bytes)
		}
		want, _ := blk.get("status")
		began := time.Now()
		answered := 0
		for {
			req, body, res := send(t, client(who), addr, blk, b, msgs)
			if res.err != nil {
				t.Fatalf("limit %s: request %d: %v", blk.name(), answered+1, res.err)
			}
			if strconv.Itoa(res.status) == want {
				checkAnswer(t, blk, req, res, b, msgs)
				break
			}
			s.charge(req, res.status, body)
			answered++
			if float64(answered) > (burst+rate*time.Since(began).Seconds())/cost+1 {
				t.Fatalf("limit %s: %d requests answered %d and none %s: over the bucket of burst %g, rate %g/s",
					blk.name(), answered, res.status, want, burst, rate)
			}
		}
		elapsed := time.Since(began).Seconds()
		lo := math.Floor((burst - took) / cost)
		hi := math.Floor((burst + rate*elapsed) / cost)
		if float64(answered) < lo || float64(answered) > hi {
			t.Errorf("limit %s: %d requests answered before %s in %.2f s, want %g..%g (burst %g, rate %g/s, %g taken before)",
				blk.name(), answered, want, elapsed, lo, hi, burst, rate, took)
		}
	}
}
