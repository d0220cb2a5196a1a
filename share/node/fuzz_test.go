package node

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"github.com/commons-energy/commons/share/household"
)

// FuzzImport feeds arbitrary text to Import: it never panics, a failed
// import stores nothing, and the ledger always verifies afterwards.
func FuzzImport(f *testing.F) {
	ctx := context.Background()
	clk := &clock{t: testT0}
	a, b := newHome(f, "Alice", clk), newHome(f, "Bob", clk)
	befriend(f, a, b)
	if _, err := a.pledge(ctx, household.PledgeRequest{To: "Bob", EnergyWh: 1500, Start: clk.t.Add(time.Hour), End: clk.t.Add(2 * time.Hour)}); err != nil {
		f.Fatal(err)
	}
	var block bytes.Buffer
	if _, err := a.ExportMessages(ctx, &block, ""); err != nil {
		f.Fatal(err)
	}
	f.Add(block.Bytes())
	f.Add([]byte("-----BEGIN COMMONS MESSAGES-----\nAAAA\n\n-----END COMMONS MESSAGES-----\n"))
	f.Add([]byte("hello"))
	f.Fuzz(func(t *testing.T, data []byte) {
		before, err := b.led.Count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := b.Import(ctx, bytes.NewReader(data))
		after, cerr := b.led.Count(ctx)
		if cerr != nil {
			t.Fatal(cerr)
		}
		if err != nil && after != before {
			t.Fatalf("failed import (%v) changed the ledger: %d -> %d messages", err, before, after)
		}
		if err == nil && after-before > int64(rep.Added) {
			t.Fatalf("import reported %d added, the ledger grew by %d", rep.Added, after-before)
		}
		if v, err := b.Verify(ctx); err != nil || !v.OK {
			t.Fatalf("ledger does not verify after import: %+v, %v", v, err)
		}
	})
}

// FuzzLoadConfig: any config file content loads into a valid config or
// fails with an error, never a panic.
func FuzzLoadConfig(f *testing.F) {
	f.Add([]byte(`{"name":"Alice","listen":"127.0.0.1:7420","meter":{"protocol":"auto"},"community":{"name":"commons","slot_seconds":900,"allocation_key":"pro-rata"}}`))
	f.Add([]byte(`{"name":"","community":{"slot_seconds":7}}`))
	f.Add([]byte(`{"name":"A","timezone":"Mars/Olympus"}`))
	f.Add([]byte(`{"name":"A","community":{"name":"c","slot_seconds":900,"allocation_key":"pro-rata"},"fuse_a":25,"production_meter":{"port":"/dev/ttyUSB1","protocol":"modbus","slave":2,"model":"sdm120","format":"8E1","poll_ms":500,"invert":true}}`))
	dir := f.TempDir()
	h := Home{ConfigDir: dir, DataDir: dir}
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(h.ConfigPath(), data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := LoadConfig(h)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("LoadConfig accepted an invalid config: %v", err)
		}
	})
}
