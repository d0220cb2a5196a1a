package node

import (
	"os"
	"strings"
	"testing"
)

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name, json, wantErr string
	}{
		{"defaults", `{"name":"Alice","meter":{},"community":{"name":"commons","slot_seconds":900,"allocation_key":"pro-rata"}}`, ""},
		{"auto accept", `{"name":"Alice","meter":{},"community":{"name":"commons","slot_seconds":900,"allocation_key":"pro-rata"},"auto_accept":{"max_wh":2000,"from":["Bob"]}}`, ""},
		{"auto accept negative", `{"name":"Alice","meter":{},"community":{"name":"c","slot_seconds":900,"allocation_key":"pro-rata"},"auto_accept":{"max_wh":-1}}`, "max_wh -1 is out of range"},
		{"auto accept empty from", `{"name":"Alice","meter":{},"community":{"name":"c","slot_seconds":900,"allocation_key":"pro-rata"},"auto_accept":{"from":[" "]}}`, "empty entry"},
		{"storage", `{"name":"Alice","meter":{},"community":{"name":"c","slot_seconds":900,"allocation_key":"pro-rata"},"storage":{"neighbour_mib":8,"unknown_kind_mib":1,"reserve_mib":128}}`, ""},
		{"status privacy", `{"name":"Alice","meter":{},"community":{"name":"c","slot_seconds":900,"allocation_key":"pro-rata"},"status":{"precision_w":50,"min_interval_s":600}}`, ""},
		{"status off", `{"name":"Alice","meter":{},"community":{"name":"c","slot_seconds":900,"allocation_key":"pro-rata"},"status":{"off":true}}`, ""},
		{"status precision negative", `{"name":"Alice","meter":{},"community":{"name":"c","slot_seconds":900,"allocation_key":"pro-rata"},"status":{"precision_w":-1}}`, "status precision_w -1 is out of range"},
		{"status interval too long", `{"name":"Alice","meter":{},"community":{"name":"c","slot_seconds":900,"allocation_key":"pro-rata"},"status":{"min_interval_s":100000}}`, "status min_interval_s 100000 is out of range"},
		{"storage negative", `{"name":"Alice","meter":{},"community":{"name":"c","slot_seconds":900,"allocation_key":"pro-rata"},"storage":{"reserve_mib":-5}}`, "storage reserve_mib -5 is out of range"},
		{"storage unknown field", `{"name":"Alice","meter":{},"community":{"name":"c","slot_seconds":900,"allocation_key":"pro-rata"},"storage":{"quota":5}}`, "unknown field \"quota\""},
		{"unknown field", `{"name":"Alice","colour":"red"}`, "unknown field \"colour\""},
		{"bad slot", `{"name":"Alice","community":{"name":"c","slot_seconds":700,"allocation_key":"pro-rata"}}`, "slot_seconds 700 must divide a day"},
		{"bad key", `{"name":"Alice","community":{"name":"c","slot_seconds":900,"allocation_key":"random"}}`, "allocation_key \"random\" is unknown"},
		{"bad protocol", `{"name":"Alice","meter":{"protocol":"x10"},"community":{"name":"c","slot_seconds":900,"allocation_key":"pro-rata"}}`, "meter protocol \"x10\" is unknown"},
		{"bad zone", `{"name":"Alice","timezone":"Mars/Olympus","community":{"name":"c","slot_seconds":900,"allocation_key":"pro-rata"}}`, "timezone \"Mars/Olympus\" is unknown"},
		{"no name", `{"name":"","community":{"name":"c","slot_seconds":900,"allocation_key":"pro-rata"}}`, "name is empty"},
		{"not json", `name = "Alice"`, "fix the JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			h := Home{ConfigDir: dir, DataDir: dir}
			if err := os.WriteFile(h.ConfigPath(), []byte(tt.json), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := LoadConfig(h)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), h.ConfigPath()) {
					t.Fatalf("LoadConfig = %+v, %v; want an error naming the file and %q", c, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// What is saved loads back the same.
			if err := SaveConfig(h, c); err != nil {
				t.Fatal(err)
			}
			back, err := LoadConfig(h)
			if err != nil || back.Name != c.Name || (c.AutoAccept == nil) != (back.AutoAccept == nil) ||
				c.AutoAccept != nil && (back.AutoAccept.MaxWh != c.AutoAccept.MaxWh || len(back.AutoAccept.From) != len(c.AutoAccept.From)) {
				t.Fatalf("round trip = %+v, %v; want %+v", back, err, c)
			}
			if (c.Storage == nil) != (back.Storage == nil) || c.Storage != nil && *c.Storage != *back.Storage {
				t.Fatalf("storage round trip = %+v, want %+v", back.Storage, c.Storage)
			}
			if (c.Status == nil) != (back.Status == nil) || c.Status != nil && *c.Status != *back.Status {
				t.Fatalf("status round trip = %+v, want %+v", back.Status, c.Status)
			}
		})
	}
}
