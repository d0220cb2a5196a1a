package main

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

// TestDaemonMQTTFlag: a broker URL --mqtt cannot use is a usage error
// (exit 2) that says why without repeating a password, before anything
// is opened.
func TestDaemonMQTTFlag(t *testing.T) {
	for _, tt := range []struct{ url, want string }{
		{"mqtt://alice:hunter22@broker", "password"},
		{"http://broker", "mqtt://"},
		{"mqtt://broker:70000", "port"},
		{"", "empty"},
	} {
		root := newRootCmd()
		root.SetArgs([]string{"--home", t.TempDir(), "daemon", "--mqtt", tt.url})
		root.SetOut(io.Discard)
		root.SetErr(io.Discard)
		err := root.ExecuteContext(context.Background())
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != exitUsage {
			t.Errorf("--mqtt %q: %v; want exit %d", tt.url, err, exitUsage)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, tt.want) || strings.Contains(msg, "hunter22") {
			t.Errorf("--mqtt %q: %q; want it to say %q and never the password", tt.url, msg, tt.want)
		}
	}
}
