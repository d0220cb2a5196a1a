package relay

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"nats://hub:4222":                         "nats://hub:4222",
		"nats://alice:s3cret@hub:4222":            "nats://hub:4222",
		"nats://t0ken@hub:4222":                   "nats://hub:4222",
		"tls://u:p@a:4222, nats://u:p@b:4222":     "tls://a:4222,nats://b:4222",
		"nats://u:p%zz@hub:4222":                  "***@hub:4222",
		"wss://street:pw@hub.example/commons?x=1": "wss://hub.example/commons?x=1",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestValidateURL(t *testing.T) {
	for _, ok := range []string{"nats://hub:4222", "hub.example:4222", "tls://u:p@hub:4222", "nats://a:4222,nats://b:4222", "ws://hub:8080"} {
		if err := ValidateURL(ok); err != nil {
			t.Errorf("ValidateURL(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"http://hub:4222", "nats://", "nats://u:s3cret@:4222"} {
		err := ValidateURL(bad)
		if err == nil {
			t.Errorf("ValidateURL(%q) accepts it", bad)
		} else if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("ValidateURL(%q) shows the password: %v", bad, err)
		}
	}
}

func TestCursorFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "relay-cursor.json")
	if n, err := ReadCursor(path, "S"); n != 0 || err != nil {
		t.Fatalf("no file: %d, %v", n, err)
	}
	c := &Client{cfg: Config{CursorPath: path}, stream: "S"}
	c.st.Cursor = 42
	c.saveCursor(false)
	if n, err := ReadCursor(path, "S"); n != 42 || err != nil {
		t.Fatalf("saved 42, read %d, %v", n, err)
	}
	// Another community's stream (the config's relay changed): start over.
	if n, err := ReadCursor(path, "OTHER"); n != 0 || err != nil {
		t.Fatalf("other stream: %d, %v", n, err)
	}
	// Within cursorSaveEvery only a forced save writes.
	c.st.Cursor = 43
	c.saveCursor(false)
	if n, _ := ReadCursor(path, "S"); n != 42 {
		t.Fatalf("an early save wrote %d", n)
	}
	c.saveCursor(true)
	if n, _ := ReadCursor(path, "S"); n != 43 {
		t.Fatalf("a forced save wrote %d", n)
	}
	if err := os.WriteFile(path, []byte("{junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if n, err := ReadCursor(path, "S"); n != 0 || err == nil {
		t.Fatalf("junk file: %d, %v; want 0 and an error", n, err)
	}
}

func TestBackoff(t *testing.T) {
	c := &Client{cfg: Config{ReconnectWait: 500 * time.Millisecond, MaxReconnectWait: 4 * time.Second}}
	want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second}
	for i, w := range want {
		if got := c.backoff(i + 1); got != w {
			t.Errorf("backoff(%d) = %v, want %v", i+1, got, w)
		}
	}
}
