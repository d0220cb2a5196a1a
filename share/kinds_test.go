package share

import (
	"errors"
	"strings"
	"testing"
)

func TestDecodeContentStrict(t *testing.T) {
	bob := testKey(t, "bob").ID().String()
	pid := strings.Repeat("ab", 32)
	tests := []struct {
		name string
		kind Kind
		in   string
		ok   bool
		msg  string
	}{
		{"announce", KindAnnounce, `{"name":"Alice","addrs":["127.0.0.1:7420"]}`, true, ""},
		{"announce no addrs", KindAnnounce, `{"name":"Alice"}`, true, ""},
		{"announce empty addrs not canonical", KindAnnounce, `{"name":"Alice","addrs":[]}`, false, "canonical"},
		{"spaces", KindAnnounce, `{"name": "Alice"}`, false, "canonical"},
		{"key order", KindAccept, `{"energy_wh":5,"pledge":"` + pid + `"}`, false, "canonical"},
		{"duplicate key", KindAnnounce, `{"name":"Alice","name":"Eve"}`, false, "canonical"},
		{"unknown field", KindAnnounce, `{"name":"Alice","age":3}`, false, "unknown field"},
		{"trailing", KindAnnounce, `{"name":"Alice"} {}`, false, "after the JSON"},
		{"not json", KindAnnounce, `name=Alice`, false, "invalid"},
		{"empty name", KindAnnounce, `{"name":""}`, false, "name is empty"},
		{"control char", KindAnnounce, `{"name":"A\nB"}`, false, "control character"},
		{"long name", KindAnnounce, `{"name":"` + strings.Repeat("x", 65) + `"}`, false, "limit 64"},
		{"utf8 name", KindAnnounce, `{"name":"Zoë ☀"}`, true, ""},
		{"escaped utf8 not canonical", KindAnnounce, `{"name":"Zo\u00eb"}`, false, "canonical"},
		{"html chars literal", KindAnnounce, `{"name":"A&B <x>"}`, true, ""},
		{"addr with space", KindAnnounce, `{"name":"A","addrs":["a b"]}`, false, "printable"},
		{"pledge", KindPledge, `{"to":"` + bob + `","from_slot":100,"to_slot":104,"energy_wh":1500,"expiry_slot":100,"nonce":1}`, true, ""},
		{"pledge float", KindPledge, `{"to":"` + bob + `","from_slot":100,"to_slot":104,"energy_wh":1.5,"expiry_slot":100,"nonce":1}`, false, "energy_wh"},
		{"pledge exponent", KindPledge, `{"to":"` + bob + `","from_slot":100,"to_slot":104,"energy_wh":1e3,"expiry_slot":100,"nonce":1}`, false, "energy_wh"},
		{"pledge string number", KindPledge, `{"to":"` + bob + `","from_slot":100,"to_slot":104,"energy_wh":"1500","expiry_slot":100,"nonce":1}`, false, "energy_wh"},
		{"pledge missing field", KindPledge, `{"to":"` + bob + `","from_slot":100,"to_slot":104,"expiry_slot":100,"nonce":1}`, false, "energy_wh is 0"},
		{"pledge empty window", KindPledge, `{"to":"` + bob + `","from_slot":100,"to_slot":100,"energy_wh":5,"expiry_slot":100,"nonce":1}`, false, "must be after"},
		{"pledge too long", KindPledge, `{"to":"` + bob + `","from_slot":100,"to_slot":197,"energy_wh":5,"expiry_slot":100,"nonce":1}`, false, "limit of 96"},
		{"pledge expiry after start", KindPledge, `{"to":"` + bob + `","from_slot":100,"to_slot":104,"energy_wh":5,"expiry_slot":101,"nonce":1}`, false, "expires"},
		{"pledge negative", KindPledge, `{"to":"` + bob + `","from_slot":-4,"to_slot":104,"energy_wh":5,"expiry_slot":-4,"nonce":1}`, false, "from_slot"},
		{"pledge bad to", KindPledge, `{"to":"bob","from_slot":100,"to_slot":104,"energy_wh":5,"expiry_slot":100,"nonce":1}`, false, "household id"},
		{"accept", KindAccept, `{"pledge":"` + pid + `","energy_wh":5}`, true, ""},
		{"accept upper hex not canonical", KindAccept, `{"pledge":"` + strings.ToUpper(pid) + `","energy_wh":5}`, false, "canonical"},
		{"accept zero", KindAccept, `{"pledge":"` + pid + `","energy_wh":0}`, false, "energy_wh"},
		{"decline", KindDecline, `{"pledge":"` + pid + `","reason":"away"}`, true, ""},
		{"cancel", KindCancel, `{"pledge":"` + pid + `"}`, true, ""},
		{"report", KindReport, `{"from_slot":10,"export_wh":[1,2],"import_wh":[0,0]}`, true, ""},
		{"report lengths", KindReport, `{"from_slot":10,"export_wh":[1,2],"import_wh":[0]}`, false, "entries"},
		{"settle", KindSettle, `{"pledge":"` + pid + `","from_slot":10,"to_slot":12,"allocated_wh":[1,0],"export_wh":[5,0],"import_wh":[1,9],"total_wh":1,"key":"pro-rata"}`, true, ""},
		{"settle over export", KindSettle, `{"pledge":"` + pid + `","from_slot":10,"to_slot":12,"allocated_wh":[6,0],"export_wh":[5,0],"import_wh":[9,9],"total_wh":6,"key":"pro-rata"}`, false, "exceeds export"},
		{"settle bad total", KindSettle, `{"pledge":"` + pid + `","from_slot":10,"to_slot":12,"allocated_wh":[1,0],"export_wh":[5,0],"import_wh":[1,9],"total_wh":2,"key":"pro-rata"}`, false, "total_wh"},
		{"status", KindStatus, `{"surplus_w":1200,"need_w":0,"avg_surplus_w":900,"avg_need_w":0}`, true, ""},
		{"status forecast", KindStatus, `{"surplus_w":0,"need_w":300,"avg_surplus_w":0,"avg_need_w":250,"forecast_from":5000,"forecast_wh":[-75,120]}`, true, ""},
		{"status negative", KindStatus, `{"surplus_w":-1,"need_w":0,"avg_surplus_w":0,"avg_need_w":0}`, false, "surplus_w"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := DecodeContent(tc.kind, []byte(tc.in))
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				b, err := EncodeContent(c)
				if err != nil || string(b) != tc.in {
					t.Fatalf("re-encode %s, %v", b, err)
				}
				return
			}
			if !errors.Is(err, ErrBadContent) {
				t.Fatalf("got %v, want ErrBadContent", err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("%q does not mention %q", err, tc.msg)
			}
		})
	}
}

func TestEncodeRefusesInvalid(t *testing.T) {
	if _, err := EncodeContent(&Announce{Name: " padded "}); !errors.Is(err, ErrBadContent) {
		t.Fatalf("got %v", err)
	}
	if _, err := EncodeContent(&Pledge{}); !errors.Is(err, ErrBadContent) {
		t.Fatalf("got %v", err)
	}
}

func TestSplitWh(t *testing.T) {
	for _, tc := range []struct {
		total int64
		n     int
		want  []int64
	}{
		{1500, 4, []int64{375, 375, 375, 375}},
		{1501, 4, []int64{376, 375, 375, 375}},
		{1503, 4, []int64{376, 376, 376, 375}},
		{3, 8, []int64{1, 1, 1, 0, 0, 0, 0, 0}},
		{7, 1, []int64{7}},
	} {
		got := SplitWh(tc.total, tc.n)
		var sum int64
		for i := range got {
			sum += got[i]
			if got[i] != tc.want[i] {
				t.Fatalf("SplitWh(%d,%d) = %v, want %v", tc.total, tc.n, got, tc.want)
			}
		}
		if sum != tc.total {
			t.Fatalf("sum %d", sum)
		}
		terms := Terms{Window: SlotRange{From: 50, To: 50 + int64(tc.n)}, PledgedWh: tc.total, AcceptedWh: tc.total}
		for i := range got {
			if p, _ := terms.SlotWh(50 + int64(i)); p != got[i] {
				t.Fatalf("SlotWh disagrees with SplitWh at %d", i)
			}
		}
	}
}

func TestKindNames(t *testing.T) {
	for k, n := range kindNames {
		if k.String() != n || !k.Known() {
			t.Fatalf("%d", k)
		}
		if k.Ephemeral() != (k == KindStatus) {
			t.Fatalf("%s ephemeral=%v", n, k.Ephemeral())
		}
		if newContent(k) == nil || newContent(k).Kind() != k {
			t.Fatalf("newContent(%s)", n)
		}
	}
}
