package tui

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/commons-energy/commons/meter"
	"github.com/commons-energy/commons/share/household"
)

// The fake household: a fixed clock in a fixed zone, fixed data.
var (
	testZone = time.FixedZone("CEST", 2*3600)
	testNow  = time.Date(2026, 6, 15, 13, 20, 30, 0, testZone)
)

func testClock() time.Time { return testNow }

// fakeBackend implements household.Household for the dashboard's tests. It records every action.
type fakeBackend struct {
	household.Household // the methods the dashboard does not call: nil
	mu                  sync.Mutex
	state               household.State
	samples             []household.Sample
	buckets             []household.Bucket
	preview             household.Preview
	delivery            household.Delivery
	note                string
	failWith            error // returned by Pledge, Accept, Decline, Cancel when set
	calls               []string
	subs                []chan household.Event
	nextID              int
	aggCalls            int
	stateErr            error // returned by State when set
	previewErr          error // returned by Preview when set
}

func (f *fakeBackend) State(context.Context) (household.State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stateErr != nil {
		return household.State{}, f.stateErr
	}
	s := f.state
	s.Neighbours = append([]household.Neighbour(nil), f.state.Neighbours...)
	s.Pledges = append([]household.Pledge(nil), f.state.Pledges...)
	return s, nil
}

func (f *fakeBackend) Samples(_ context.Context, since time.Time) ([]household.Sample, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []household.Sample
	for _, s := range f.samples {
		if !s.Time.Before(since) {
			out = append(out, s)
		}
	}
	return out, nil
}

func (f *fakeBackend) Aggregates(_ context.Context, from, to time.Time) ([]household.Bucket, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.aggCalls++
	var out []household.Bucket
	for _, b := range f.buckets {
		if b.Start.Add(b.Length).After(from) && b.Start.Before(to) {
			out = append(out, b)
		}
	}
	return out, nil
}

func (f *fakeBackend) Preview(_ context.Context, req household.PledgeRequest) (household.Preview, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("preview to=%s wh=%d %s-%s", req.To, req.EnergyWh,
		req.Start.In(testZone).Format("15:04"), req.End.In(testZone).Format("15:04")))
	if f.previewErr != nil {
		return household.Preview{}, f.previewErr
	}
	p := f.preview
	p.Start, p.End = req.Start, req.End
	return p, nil
}

func (f *fakeBackend) Pledge(_ context.Context, req household.PledgeRequest) (household.PledgeResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("pledge to=%s wh=%d %s-%s", req.To, req.EnergyWh,
		req.Start.In(testZone).Format("15:04"), req.End.In(testZone).Format("15:04")))
	if f.failWith != nil {
		return household.PledgeResult{}, f.failWith
	}
	f.nextID++
	p := household.Pledge{ID: fmt.Sprintf("new%05d", f.nextID), From: f.state.Home.ID, To: req.To, FromName: f.state.Home.Name,
		Outgoing: true, EnergyWh: req.EnergyWh, Window: household.PledgeWindow{Start: req.Start, End: req.End}, State: household.StatePledged, Verified: household.VerifyOK, Created: testNow}
	for _, n := range f.state.Neighbours {
		if n.ID == req.To {
			p.ToName = n.Name
		}
	}
	f.state.Pledges = append([]household.Pledge{p}, f.state.Pledges...)
	return household.PledgeResult{Pledge: p, Delivery: f.delivery, Note: f.note}, nil
}

func (f *fakeBackend) answer(verb, id string, from, to household.PledgeState, outgoing bool) (household.Pledge, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, verb+" "+id)
	if f.failWith != nil {
		return household.Pledge{}, f.failWith
	}
	for i, p := range f.state.Pledges {
		if p.ID == id {
			if p.State != from && !(verb == "cancel" && p.State.Open()) || p.Outgoing != outgoing {
				return household.Pledge{}, fmt.Errorf("pledge %s is %s", id, p.State)
			}
			f.state.Pledges[i].State = to
			if to == household.StateAccepted {
				f.state.Pledges[i].AcceptedWh = ptr(p.EnergyWh)
			}
			return f.state.Pledges[i], nil
		}
	}
	return household.Pledge{}, errors.New("no such pledge")
}

// ptr returns a pointer to a copy of v.
func ptr[T any](v T) *T { return &v }

func (f *fakeBackend) Accept(_ context.Context, id string) (household.Pledge, error) {
	return f.answer("accept", id, household.StatePledged, household.StateAccepted, false)
}

func (f *fakeBackend) Decline(_ context.Context, id string) (household.Pledge, error) {
	return f.answer("decline", id, household.StatePledged, household.StateDeclined, false)
}

func (f *fakeBackend) Cancel(_ context.Context, id string) (household.Pledge, error) {
	return f.answer("cancel", id, household.StatePledged, household.StateCancelled, true)
}

func (f *fakeBackend) Subscribe(ctx context.Context) <-chan household.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan household.Event, 16)
	f.subs = append(f.subs, ch)
	return ch
}

// send delivers ev to every subscriber.
func (f *fakeBackend) send(ev household.Event) {
	f.mu.Lock()
	subs := append([]chan household.Event(nil), f.subs...)
	f.mu.Unlock()
	for _, ch := range subs {
		ch <- ev
	}
}

func (f *fakeBackend) subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

func (f *fakeBackend) callLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// netAt is a deterministic household curve in W (import positive) for
// second i of the day: export around noon, import in the evening, with
// integer-only wiggles.
func netAt(t time.Time) int64 {
	lt := t.In(testZone)
	sec := int64(lt.Hour()*3600 + lt.Minute()*60 + lt.Second())
	// solar: a triangle from 07:00 to 19:00 peaking at 13:00 at 4200 W
	var solar int64
	if sec > 7*3600 && sec < 19*3600 {
		d := sec - 13*3600
		if d < 0 {
			d = -d
		}
		solar = 4200 * (6*3600 - d) / (6 * 3600)
	}
	load := 350 + (sec*37%900)/3 + ((sec/97)%5)*120
	if sec > 18*3600 && sec < 21*3600 {
		load += 1800
	}
	return load - solar
}

// newFake returns the standard test household.
func newFake() *fakeBackend {
	at := func(h, m int) time.Time { return time.Date(2026, 6, 15, h, m, 0, 0, testZone) }
	reading := meter.Reading{
		Time: testNow, Protocol: "dsmr", Version: "50", MeterID: "4530303435",
		PowerImportW: meter.Some(0), PowerExportW: meter.Some(2317),
		EnergyImport: meter.Registers{Total: meter.Some(2192317)},
		EnergyExport: meter.Registers{Total: meter.Some(2487372)},
		Tariff:       2,
		Phases: [3]meter.Phase{
			{VoltageMV: meter.Some(236900), CurrentMA: meter.Some(10000), PowerImportW: meter.Some(0), PowerExportW: meter.Some(2317)},
			{VoltageMV: meter.Some(235100), CurrentMA: meter.Some(2000), PowerImportW: meter.Some(412), PowerExportW: meter.Some(0)},
			{VoltageMV: meter.Some(237400), CurrentMA: meter.Some(23000), PowerImportW: meter.Some(5300), PowerExportW: meter.Some(0)},
		},
		ChecksumOK: true,
	}
	f := &fakeBackend{
		state: household.State{
			Home: household.Home{ID: "h-alice-0001", Name: "Alice", SlotLength: 15 * time.Minute, FuseA: 25},
			Live: household.Live{
				Reading: reading, HasReading: true,
				Meter: household.MeterState{Protocol: "dsmr", Port: "/dev/ttyUSB0", Online: true, LastTelegram: ptr(testNow.Add(-time.Second)), CRCErrors: 2},
				Today: household.Today{ImportWh: 4321, ExportWh: 12345},
			},
			Neighbours: []household.Neighbour{
				{ID: "h-anna-0002", Name: "Anna", Status: &household.NeighbourStatus{SurplusW: 1200, Time: testNow.Add(-40 * time.Second)},
					LastSeen: ptr(testNow.Add(-10 * time.Second)), OpenPledges: 1, GivenWh: 500, ReceivedWh: 7250, MonthGivenWh: 0, MonthReceivedWh: 1500},
				{ID: "h-bob-00003", Name: "Bob", Status: &household.NeighbourStatus{SurplusW: -800, Time: testNow.Add(-2 * time.Minute)},
					LastSeen: ptr(testNow.Add(-2 * time.Minute)), OpenPledges: 1, GivenWh: 12000, MonthGivenWh: 3000},
				{ID: "h-carla-004", Name: "Carla", LastSeen: ptr(testNow.Add(-26 * time.Hour)), Frozen: true,
					Problem: "feed forked at seq 42: frozen"},
				{ID: "h-dev-00005", Name: "Dev", Status: &household.NeighbourStatus{SurplusW: -2300, Time: testNow.Add(-15 * time.Second)},
					LastSeen: ptr(testNow.Add(-15 * time.Second)), GivenWh: 1740, MonthGivenWh: 1740, VerifyFailures: 2},
			},
			Pledges: []household.Pledge{
				{ID: "p2anna0001", From: "h-anna-0002", To: "h-alice-0001", FromName: "Anna", ToName: "Alice",
					EnergyWh: 1000, Window: household.PledgeWindow{Start: at(15, 0), End: at(16, 0)}, State: household.StatePledged, Delivered: true, Verified: household.VerifyOK, Created: testNow.Add(-time.Minute)},
				{ID: "p1bob00001", From: "h-alice-0001", To: "h-bob-00003", FromName: "Alice", ToName: "Bob", Outgoing: true,
					EnergyWh: 1500, Window: household.PledgeWindow{Start: at(14, 0), End: at(15, 0)}, State: household.StatePledged, Verified: household.VerifyOK, Created: testNow.Add(-10 * time.Minute)},
				{ID: "p3dev00001", From: "h-alice-0001", To: "h-dev-00005", FromName: "Alice", ToName: "Dev", Outgoing: true,
					EnergyWh: 2000, Window: household.PledgeWindow{Start: at(11, 0), End: at(12, 0)}, State: household.StateSettled, AcceptedWh: ptr(int64(2000)),
					DeliveredWh: ptr(int64(1740)), Delivered: true, Verified: household.VerifyOK, Created: at(9, 0),
					LimitedBy: ptr("import"), SlotLimits: []string{"pledged", "pledged", "import", "import"},
					SlotWh: []int64{500, 500, 370, 370}},
				{ID: "p4anna0001", From: "h-anna-0002", To: "h-alice-0001", FromName: "Anna", ToName: "Alice",
					EnergyWh: 500, Window: household.PledgeWindow{Start: at(9, 0).Add(-24 * time.Hour), End: at(9, 15).Add(-24 * time.Hour)}, State: household.StateSettled,
					AcceptedWh: ptr(int64(500)), DeliveredWh: ptr(int64(500)), Delivered: true, Verified: household.VerifyOK,
					LimitedBy: ptr("pledged"), SlotLimits: []string{"pledged"}, SlotWh: []int64{500}},
				{ID: "p5bob00001", From: "h-alice-0001", To: "h-bob-00003", FromName: "Alice", ToName: "Bob", Outgoing: true,
					EnergyWh: 750, Window: household.PledgeWindow{Start: at(10, 0), End: at(10, 30)}, State: household.StateDeclined, Delivered: true, Verified: household.VerifyOK},
				{ID: "p6carla001", From: "h-carla-004", To: "h-alice-0001", FromName: "Carla", ToName: "Alice",
					EnergyWh: 3000, Window: household.PledgeWindow{Start: at(8, 0).Add(-48 * time.Hour), End: at(9, 0).Add(-48 * time.Hour)}, State: household.StateExpired, Delivered: true, Verified: household.VerifyFailed},
			},
		},
		preview:  household.Preview{ForecastSurplusWh: meter.Some(2600), PledgedWh: 0},
		delivery: household.Delivered,
	}
	// one hour of 1 s samples
	for t := testNow.Add(-time.Hour + time.Second); !t.After(testNow); t = t.Add(time.Second) {
		n := netAt(t)
		s := household.Sample{Time: t}
		if n > 0 {
			s.ImportW = n
		} else {
			s.ExportW = -n
		}
		f.samples = append(f.samples, s)
	}
	// a week of 1 min buckets
	end := testNow.Truncate(time.Minute)
	for t := end.Add(-7 * 24 * time.Hour); t.Before(end); t = t.Add(time.Minute) {
		n := netAt(t.Add(30 * time.Second))
		b := household.Bucket{Start: t, Length: time.Minute}
		if n > 0 {
			b.ImportWh = n / 60
		} else {
			b.ExportWh = -n / 60
		}
		f.buckets = append(f.buckets, b)
	}
	return f
}

func someW(v int64) meter.Optional { return meter.Some(v) }
