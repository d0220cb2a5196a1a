package share

import (
	"crypto/ed25519"
	"runtime"
	"testing"
)

// cpuMeter reports CPU time per operation of the benchmark's thread as
// "cpu-ns/op" and the matching rate per CPU second as "msgs/cpu-s".
type cpuMeter struct {
	b     *testing.B
	start int64
	ok    bool
}

func startCPU(b *testing.B) *cpuMeter {
	runtime.LockOSThread()
	d, ok := threadCPU()
	return &cpuMeter{b: b, start: int64(d), ok: ok}
}

func (c *cpuMeter) stop() {
	defer runtime.UnlockOSThread()
	d, ok := threadCPU()
	if !c.ok || !ok || c.b.N == 0 {
		return
	}
	per := float64(int64(d)-c.start) / float64(c.b.N)
	c.b.ReportMetric(per, "cpu-ns/op")
	if per > 0 {
		c.b.ReportMetric(1e9/per, "msgs/cpu-s")
	}
}

// BenchmarkOpen measures full verification of one received pledge message:
// parse, community, Ed25519ctx signature, content hash, content rules.
func BenchmarkOpen(b *testing.B) {
	alice, bob := testKey(b, "alice"), testKey(b, "bob")
	m := compose(b, alice, Head{Seq: 41, ID: ID{1}}, t0, &Pledge{To: bob.ID(), FromSlot: 1000, ToSlot: 1004, EnergyWh: 1500, ExpirySlot: 1000, Nonce: 9})
	raw := m.Bytes()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	cpu := startCPU(b)
	for b.Loop() {
		if _, err := Open(raw, testCommunity); err != nil {
			b.Fatal(err)
		}
	}
	cpu.stop()
}

// BenchmarkVerify measures signature and content hash only.
func BenchmarkVerify(b *testing.B) {
	alice, bob := testKey(b, "alice"), testKey(b, "bob")
	m := compose(b, alice, Head{}, t0, &Pledge{To: bob.ID(), FromSlot: 1000, ToSlot: 1004, EnergyWh: 1500, ExpirySlot: 1000})
	b.ReportAllocs()
	cpu := startCPU(b)
	for b.Loop() {
		if err := m.Verify(); err != nil {
			b.Fatal(err)
		}
	}
	cpu.stop()
}

// BenchmarkCompose measures encoding and signing a pledge.
func BenchmarkCompose(b *testing.B) {
	alice, bob := testKey(b, "alice"), testKey(b, "bob")
	p := &Pledge{To: bob.ID(), FromSlot: 1000, ToSlot: 1004, EnergyWh: 1500, ExpirySlot: 1000}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := alice.Compose(testCommunity, Head{}, t0, p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAllocate settles a street: 10 households, 20 pledges of 4
// slots each.
func BenchmarkAllocate(b *testing.B) {
	m := MeterTable{}
	var terms []Terms
	for h := 0; h < 10; h++ {
		for s := int64(0); s < 8; s++ {
			m.Set(hh(byte(h)), s, int64(500+h*37), int64(400+h*23))
		}
	}
	for i := 0; i < 20; i++ {
		terms = append(terms, Terms{Pledge: ID{byte(i)}, From: hh(byte(i % 10)), To: hh(byte((i*3 + 1) % 10)), Window: SlotRange{From: int64(i % 4), To: int64(i%4) + 4}, PledgedWh: 2000, AcceptedWh: 1500})
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Allocate(terms, m, ProRata{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEd25519Baseline is the bound: one plain crypto/ed25519
// verification on this machine, for comparison with BenchmarkVerify.
func BenchmarkEd25519Baseline(b *testing.B) {
	k := testKey(b, "alice")
	msg := make([]byte, HeaderSize)
	sig := ed25519.Sign(k.priv, msg)
	pub := k.ID().PublicKey()
	cpu := startCPU(b)
	for b.Loop() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("verify")
		}
	}
	cpu.stop()
}

// BenchmarkDecodePledge measures the content rules of a pledge (strict
// decode, validation, canonical re-encoding).
func BenchmarkDecodePledge(b *testing.B) {
	alice, bob := testKey(b, "alice"), testKey(b, "bob")
	m := compose(b, alice, Head{}, t0, &Pledge{To: bob.ID(), FromSlot: 1000, ToSlot: 1004, EnergyWh: 1500, ExpirySlot: 1000})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Decode(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSealReport seals a 4-slot report to its author and one
// counterparty (what a box does once per settled window).
func BenchmarkSealReport(b *testing.B) {
	alice, bob := testKey(b, "alice"), testKey(b, "bob")
	r := &Report{FromSlot: 100, ExportWh: []int64{300, 250, 100, 0}, ImportWh: []int64{0, 0, 0, 40}}
	for b.Loop() {
		if _, err := SealReport(alice, []HouseholdID{bob.ID()}, r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenSealed opens that sealed report as its counterparty (what
// a reader's box does once per sealed report addressed to it).
func BenchmarkOpenSealed(b *testing.B) {
	alice, bob := testKey(b, "alice"), testKey(b, "bob")
	s, err := SealReport(alice, []HouseholdID{bob.ID()}, &Report{FromSlot: 100, ExportWh: []int64{300, 250, 100, 0}, ImportWh: []int64{0, 0, 0, 40}})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.Open(bob); err != nil {
			b.Fatal(err)
		}
	}
}
