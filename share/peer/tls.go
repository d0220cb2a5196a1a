package peer

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/commons-energy/commons/share"
)

// idFromKey converts an Ed25519 public key to a household id.
func idFromKey(pub ed25519.PublicKey) (share.HouseholdID, error) {
	var id share.HouseholdID
	if len(pub) != ed25519.PublicKeySize {
		return id, fmt.Errorf("household key: want %d bytes, got %d", ed25519.PublicKeySize, len(pub))
	}
	copy(id[:], pub)
	return id, nil
}

// certValidity is how long a box's self-signed certificate claims to be
// valid. Validity is not what is trusted: the key is pinned by household id,
// and the dates are not checked.
const certValidity = 100 * 365 * 24 * time.Hour

// Certificate makes the self-signed TLS certificate a box presents to its
// neighbours: the box's Ed25519 identity key signs a certificate for itself.
// Neighbours trust it only because its public key equals the household id
// they were given in an invite; there is no certificate authority.
func Certificate(key ed25519.PrivateKey) (tls.Certificate, error) {
	if len(key) != ed25519.PrivateKeySize {
		return tls.Certificate{}, fmt.Errorf("identity key: want %d bytes, got %d", ed25519.PrivateKeySize, len(key))
	}
	pub := key.Public().(ed25519.PublicKey)
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate serial: %w", err)
	}
	now := time.Now().Add(-time.Hour)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "commons " + hex.EncodeToString(pub)},
		NotBefore:             now,
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("create certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("parse own certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// ErrUnknownPeer is returned (wrapped) by the TLS handshake when the other
// box's key is not the one expected.
var ErrUnknownPeer = errors.New("unknown peer")

// peerID extracts the household id from the certificate a peer presented
// in the TLS handshake. The TLS 1.3 handshake itself has already proved
// that the peer holds the certificate's private key; this checks that the
// certificate is one self-signed Ed25519 certificate.
func peerID(rawCerts [][]byte) (share.HouseholdID, error) {
	var id share.HouseholdID
	if len(rawCerts) != 1 {
		return id, fmt.Errorf("%w: want exactly one certificate, got %d", ErrUnknownPeer, len(rawCerts))
	}
	cert, err := x509.ParseCertificate(rawCerts[0])
	if err != nil {
		return id, fmt.Errorf("%w: certificate: %v", ErrUnknownPeer, err)
	}
	pub, ok := cert.PublicKey.(ed25519.PublicKey)
	if !ok {
		return id, fmt.Errorf("%w: certificate key is %T, not Ed25519", ErrUnknownPeer, cert.PublicKey)
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		return id, fmt.Errorf("%w: certificate is not self-signed by its key: %v", ErrUnknownPeer, err)
	}
	return idFromKey(pub)
}

// ServerTLS returns the TLS configuration of a box's listener: TLS 1.3
// only, a client certificate is required, and the handshake fails unless
// the client's key is the box itself or a household for which known
// returns true. The check runs in VerifyConnection, which TLS also calls
// for resumed sessions, so a neighbour removed since its last handshake
// cannot come back with a session ticket.
//
// retired are the certificates of keys this household had before a key
// change (docs/PROTOCOL.md §1.1, §15.1): a client that asks for one of
// them by name (SNI: the household id it pins) gets it, so a neighbour
// that has not followed the change yet still reaches the box and reads
// the handover there. Every other client gets cert.
func ServerTLS(cert tls.Certificate, self share.HouseholdID, known func(share.HouseholdID) bool, retired ...tls.Certificate) *tls.Config {
	byName := map[string]*tls.Certificate{}
	for i := range retired {
		if id, err := idFromKey(retired[i].PrivateKey.(ed25519.PrivateKey).Public().(ed25519.PublicKey)); err == nil {
			byName[id.String()] = &retired[i]
		}
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if c := byName[hello.ServerName]; c != nil {
				return c, nil
			}
			return &cert, nil
		},
		ClientAuth: tls.RequireAnyClientCert,
		VerifyConnection: func(cs tls.ConnectionState) error {
			id, err := peerID(rawCerts(cs))
			if err != nil {
				return err
			}
			if id != self && !known(id) {
				return fmt.Errorf("%w: household %s is not a neighbour", ErrUnknownPeer, id.Short())
			}
			return nil
		},
	}
}

// ClientTLS returns the TLS configuration for dialling one neighbour: TLS
// 1.3 only, this box's certificate as client certificate, and the
// handshake fails unless the server's key equals want. Certificate chains,
// names and dates are not used (InsecureSkipVerify turns off the CA check
// only; VerifyConnection does the pinning, also on resumed sessions).
//
// The client names the household it pins in SNI (its id, a valid DNS
// label), so a box that changed its key answers with the key pinned.
func ClientTLS(cert tls.Certificate, want share.HouseholdID) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		Certificates:       []tls.Certificate{cert},
		ServerName:         want.String(),
		InsecureSkipVerify: true, // pinned below by household id; there is no CA
		VerifyConnection: func(cs tls.ConnectionState) error {
			id, err := peerID(rawCerts(cs))
			if err != nil {
				return err
			}
			if id != want {
				return fmt.Errorf("%w: expected household %s, the box answering is %s", ErrUnknownPeer, want.Short(), id.Short())
			}
			return nil
		},
	}
}

// rawCerts returns the DER certificates the peer presented.
func rawCerts(cs tls.ConnectionState) [][]byte {
	out := make([][]byte, len(cs.PeerCertificates))
	for i, c := range cs.PeerCertificates {
		out[i] = c.Raw
	}
	return out
}
