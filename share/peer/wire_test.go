package peer

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestBatchRoundTrip(t *testing.T) {
	raws := [][]byte{[]byte("a"), bytes.Repeat([]byte{7}, MaxMessageSize), []byte("xyz")}
	var buf bytes.Buffer
	if err := WriteBatch(&buf, raws); err != nil {
		t.Fatal(err)
	}
	got, err := ReadBatch(bytes.NewReader(buf.Bytes()), 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(raws) {
		t.Fatalf("read %d messages, want %d", len(got), len(raws))
	}
	for i := range raws {
		if !bytes.Equal(got[i], raws[i]) {
			t.Errorf("message %d differs", i)
		}
	}
	if err := WriteBatch(&buf, [][]byte{make([]byte, MaxMessageSize+1)}); err == nil {
		t.Error("WriteBatch accepted an oversized message")
	}
}

func TestReadBatchRejects(t *testing.T) {
	cases := []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"empty is an empty batch", "", 1, ""},
		{"short length", "\x00\x00", 1, "truncated length"},
		{"zero length", "\x00\x00\x00\x00", 1, "is 0 bytes"},
		{"huge length", "\x7f\xff\xff\xff", 1, "2147483647 bytes"},
		{"just over the limit", "\x00\x00\x20\xdf", 1, "8415 bytes"},
		{"truncated body", "\x00\x00\x00\x05abc", 1, "truncated body"},
		{"too many", "\x00\x00\x00\x01a\x00\x00\x00\x01b", 1, "more than 1 messages"},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadBatch(strings.NewReader(tt.in), tt.max)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if !errors.Is(err, ErrBatch) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrBatch with %q", err, tt.want)
			}
		})
	}
}

// FuzzReadBatch: any input either fails with ErrBatch or reads messages
// that write back to exactly the input.
func FuzzReadBatch(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x00\x00\x00\x01a\x00\x00\x00\x02bc"))
	f.Add([]byte("\x00\x00\x00\x05abc"))
	f.Add([]byte("\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, in []byte) {
		raws, err := ReadBatch(bytes.NewReader(in), 16)
		if err != nil {
			if !errors.Is(err, ErrBatch) {
				t.Fatalf("error not wrapping ErrBatch: %v", err)
			}
			return
		}
		if len(raws) > 16 {
			t.Fatalf("%d messages, limit 16", len(raws))
		}
		var out bytes.Buffer
		if err := WriteBatch(&out, raws); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), in) {
			t.Fatalf("round trip differs")
		}
	})
}
