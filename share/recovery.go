package share

import (
	"fmt"
	"io"
	"os"
)

// recoveryPEMType is the PEM block type of a recovery key file. It differs
// from an identity key's, so that neither is taken for the other.
const recoveryPEMType = "COMMONS RECOVERY ED25519 SEED"

// SaveRecovery writes k as a recovery key file (mode 0600, atomically,
// never overwriting; see Save). The file is meant to leave the box: print
// it or move it to offline storage.
func (k *Identity) SaveRecovery(path string) error {
	if err := k.save(path, recoveryPEMType); err != nil {
		return fmt.Errorf("recovery key: %w", err)
	}
	return nil
}

// LoadRecoveryKey reads a recovery key file written by SaveRecovery.
// Unlike LoadIdentity it does not insist on mode 0600: the file comes
// back from offline storage (a USB stick whose file system has no
// permissions, a printout typed in) to be used once.
func LoadRecoveryKey(path string) (*Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load recovery key: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("load recovery key: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, reject(ErrBadKeyFile, "recovery key file %s is not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return nil, fmt.Errorf("load recovery key %s: %w", path, err)
	}
	return parseKeyBlock(path, data, recoveryPEMType)
}
