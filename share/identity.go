package share

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Identity is a box's signing key. One key per box: two processes or two
// boxes writing with one key fork the feed.
type Identity struct {
	priv ed25519.PrivateKey
	id   HouseholdID
}

// pemType is the PEM block type of an identity key file.
const pemType = "COMMONS ED25519 SEED"

// GenerateIdentity creates a new identity from rand (crypto/rand.Reader when
// nil).
func GenerateIdentity(r io.Reader) (*Identity, error) {
	if r == nil {
		r = rand.Reader
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := io.ReadFull(r, seed); err != nil {
		return nil, fmt.Errorf("generate identity: %w", err)
	}
	return IdentityFromSeed(seed)
}

// IdentityFromSeed returns the identity whose Ed25519 seed (RFC 8032 private
// key) is seed, which must be 32 bytes.
func IdentityFromSeed(seed []byte) (*Identity, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, reject(ErrBadKeyFile, "identity seed is %d bytes, want %d", len(seed), ed25519.SeedSize)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	var id HouseholdID
	copy(id[:], priv.Public().(ed25519.PublicKey))
	return &Identity{priv: priv, id: id}, nil
}

// ID returns the household id (the public key).
func (k *Identity) ID() HouseholdID { return k.id }

// Seed returns a copy of the 32-byte private seed.
func (k *Identity) Seed() []byte { return append([]byte(nil), k.priv.Seed()...) }

// signCtx signs msg with Ed25519ctx under context.
func (k *Identity) signCtx(context string, msg []byte) ([]byte, error) {
	return k.priv.Sign(nil, msg, &ed25519.Options{Context: context})
}

// Save writes the identity to path with mode 0600, atomically (a temporary
// file in the same directory, fsync, then a hard link to path, so a crash
// never leaves a half-written key). It refuses to overwrite an existing
// file.
func (k *Identity) Save(path string) error { return k.save(path, pemType) }

// save writes the key as a PEM block of type typ (see Save).
func (k *Identity) save(path, typ string) error {
	dir := filepath.Dir(path)
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("save identity: %s already exists: refusing to overwrite a key (move it away first if you really mean to replace this box's identity)", path)
	}
	tmp, err := os.CreateTemp(dir, ".identity-*.tmp")
	if err != nil {
		return fmt.Errorf("save identity: %w", err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("save identity: %w", err)
	}
	block := &pem.Block{Type: typ, Headers: map[string]string{"Household": k.id.String()}, Bytes: k.priv.Seed()}
	if err := pem.Encode(tmp, block); err != nil {
		tmp.Close()
		return fmt.Errorf("save identity %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save identity %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save identity %s: %w", path, err)
	}
	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("save identity: %s already exists: refusing to overwrite a key", path)
		}
		// Some file systems (FAT on an SD card, some FUSE mounts) have no
		// hard links: fall back to a rename, still atomic, after checking
		// again that no key appeared meanwhile.
		if _, serr := os.Lstat(path); serr == nil {
			return fmt.Errorf("save identity: %s already exists: refusing to overwrite a key", path)
		}
		if rerr := os.Rename(tmpName, path); rerr != nil {
			return fmt.Errorf("save identity: %w", rerr)
		}
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// LoadIdentity reads an identity key file written by Save. It refuses a
// file that group or others may read or write, with the command to fix it
// in the error.
func LoadIdentity(path string) (*Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load identity: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("load identity: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, reject(ErrBadKeyFile, "key file %s is not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		who := "others"
		if perm&0o007 == 0 {
			who = "group"
		}
		verb := "readable"
		if perm&0o044 == 0 {
			verb = "writable"
		}
		return nil, reject(ErrKeyPermissions, "key file %s is %s by %s (mode %04o): run chmod 600 %s", path, verb, who, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return nil, fmt.Errorf("load identity %s: %w", path, err)
	}
	return parseKeyFile(path, data)
}

// parseKeyFile decodes the contents of a key file; path names it in errors.
func parseKeyFile(path string, data []byte) (*Identity, error) {
	return parseKeyBlock(path, data, pemType)
}

// parseKeyBlock decodes a key file whose PEM block must be of type typ.
func parseKeyBlock(path string, data []byte, typ string) (*Identity, error) {
	block, rest := pem.Decode(data)
	if block == nil || block.Type != typ {
		what := "a commons identity key"
		if typ == recoveryPEMType {
			what = "a commons recovery key"
			if block != nil && block.Type == pemType {
				return nil, reject(ErrBadKeyFile, "key file %s is a household's signing key, not its recovery key (the file init wrote as recovery.key)", path)
			}
		}
		return nil, reject(ErrBadKeyFile, "key file %s: no %q PEM block: is this %s?", path, typ, what)
	}
	if len(trimSpace(rest)) != 0 {
		return nil, reject(ErrBadKeyFile, "key file %s: unexpected data after the key", path)
	}
	k, err := IdentityFromSeed(block.Bytes)
	if err != nil {
		return nil, reject(ErrBadKeyFile, "key file %s: %v", path, err)
	}
	if h, ok := block.Headers["Household"]; ok && h != k.id.String() {
		return nil, reject(ErrBadKeyFile, "key file %s: stored household id %s does not match the key (%s): the file is corrupt", path, h, k.id)
	}
	return k, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\n' || b[0] == '\r' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}
