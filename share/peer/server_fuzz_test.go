package peer

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzServerPush feeds arbitrary bodies to the push and status handlers
// as an authenticated neighbour: the server never panics, answers one of
// the documented statuses, and stores only messages that verify.
func FuzzServerPush(f *testing.F) {
	a, b := newAuthor(f), newAuthor(f)
	var seed bytes.Buffer
	WriteBatch(&seed, [][]byte{a.next(f), a.next(f)})
	f.Add(seed.Bytes(), false)
	seed.Reset()
	WriteBatch(&seed, [][]byte{a.status(f, 100)})
	f.Add(seed.Bytes(), true)
	f.Add([]byte("\x00\x00\x00\x03abc"), false)
	f.Add([]byte{}, true)

	cert, err := Certificate(a.key)
	if err != nil {
		f.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte, status bool) {
		st, nb := newMemStore(), newMemNeighbours()
		nb.add(a.id(), "")
		srv, err := NewServer(ServerConfig{Key: b.key, Store: st, Neighbours: nb, Verifier: ShareVerifier{Community: testCommunity},
			Limits: Limits{MaxBodyBytes: 64 << 10, MaxBatch: 8, Burst: 1 << 30, Rate: 1e9}})
		if err != nil {
			t.Fatal(err)
		}
		path := PathMessages
		if status {
			path = PathStatus
		}
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		req.Header.Set("Content-Type", BatchContentType)
		req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}
		w := httptest.NewRecorder()
		srv.http.Handler.ServeHTTP(w, req)
		switch w.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusForbidden, http.StatusConflict, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		if w.Code != http.StatusOK && st.total() != 0 && !bytes.Contains(w.Body.Bytes(), []byte(`"added":`)) {
			t.Fatalf("refused with %d but stored %d", w.Code, st.total())
		}
		// Whatever is stored verifies.
		v := ShareVerifier{Community: testCommunity}
		for _, raws := range st.msgs {
			for _, raw := range raws {
				if _, err := v.Verify(raw); err != nil {
					t.Fatalf("stored a message that does not verify: %v", err)
				}
			}
		}
	})
}
