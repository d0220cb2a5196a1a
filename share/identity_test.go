package share

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestIdentitySaveLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "identity.key")
	k, err := GenerateIdentity(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Save(path); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
	got, err := LoadIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID() != k.ID() {
		t.Fatal("loaded a different key")
	}
	// No temporary files left behind.
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("dir has %d entries", len(ents))
	}
	// Save refuses to overwrite.
	k2, _ := GenerateIdentity(nil)
	if err := k2.Save(path); err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Fatalf("overwrite: %v", err)
	}
	if again, _ := LoadIdentity(path); again.ID() != k.ID() {
		t.Fatal("key replaced")
	}
}

func TestIdentityRefusesOpenPermissions(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "identity.key")
	k := testKey(t, "alice")
	if err := k.Save(path); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mode os.FileMode
		msg  string
	}{
		{0o644, "key file " + path + " is readable by others (mode 0644): run chmod 600 " + path},
		{0o640, "is readable by group (mode 0640): run chmod 600 " + path},
		{0o620, "is writable by group (mode 0620)"},
		{0o604, "is readable by others (mode 0604)"},
	} {
		if err := os.Chmod(path, tc.mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadIdentity(path)
		if !errors.Is(err, ErrKeyPermissions) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("mode %o: %v", tc.mode, err)
		}
	}
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadIdentity(path); err != nil {
		t.Fatalf("0400 must load: %v", err)
	}
}

func TestIdentityBadFiles(t *testing.T) {
	dir := t.TempDir()
	k := testKey(t, "alice")
	good := filepath.Join(dir, "good.key")
	if err := k.Save(good); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(good)
	for name, content := range map[string]string{
		"garbage":  "hello",
		"trailing": string(data) + "more stuff",
		"wrong id": strings.Replace(string(data), "Household: "+k.ID().String(), "Household: "+testKey(t, "bob").ID().String(), 1),
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadIdentity(p); !errors.Is(err, ErrBadKeyFile) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := LoadIdentity(filepath.Join(dir, "missing.key")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
}

func TestHouseholdIDText(t *testing.T) {
	k := testKey(t, "alice")
	s := k.ID().String()
	if len(s) != 52 || strings.ToLower(s) != s {
		t.Fatalf("%q", s)
	}
	got, err := ParseHouseholdID(strings.ToUpper(s))
	if err != nil || got != k.ID() {
		t.Fatalf("%v", err)
	}
	for _, bad := range []string{"", s[:51], s + "a", "1" + s[1:], s[:51] + "7"} {
		if _, err := ParseHouseholdID(bad); !errors.Is(err, ErrBadContent) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	id := ID{0xab, 0xcd}
	if p, err := ParseID(id.String()); err != nil || p != id || id.Short() != "abcd00000000" {
		t.Fatal(err)
	}
}
