package share

import (
	"fmt"
	"testing"
)

func TestReasonCodes(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range reasons {
		if seen[r.code] {
			t.Fatalf("code %q used twice", r.code)
		}
		seen[r.code] = true
		wrapped := fmt.Errorf("context: %w", reject(r.err, "something about %s", r.code))
		if got := Reason(wrapped); got != r.code {
			t.Errorf("Reason(%v) = %q, want %q", r.err, got, r.code)
		}
	}
	if Reason(nil) != "" || Reason(fmt.Errorf("plain")) != "other" {
		t.Fatal("nil or plain error")
	}
	if Reason(&GapError{}) != "seq_gap" || Reason(&ForkError{}) != "fork" || Reason(&MissingError{Missing: []MissingMeasurement{{}}}) != "missing_measurement" {
		t.Fatal("typed errors")
	}
}
