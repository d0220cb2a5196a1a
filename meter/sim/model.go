package sim

import (
	"math"
	"sort"
	"time"

	"github.com/commons-energy/commons/meter"
)

// Meter is a simulated household with its smart meter. Instantaneous
// values (Sample) are a pure function of the profile, the seed and the
// second; the registers integrate them second by second from the start
// time in integer watt-seconds. A Meter is not safe for concurrent use.
type Meter struct {
	p     Profile
	idHex string // equipment id as the telegram carries it
	seed  uint64
	start int64 // unix second the registers start at
	cur   int64 // registers cover the seconds [start, cur)

	impWs [2]int64 // per tariff (index 0 = tariff 1), watt-seconds since start
	expWs [2]int64
	gasML int64 // millilitres since start
	gas5  int64 // gasML at the last 5-minute boundary
	gas5T int64 // that boundary, unix seconds

	days [4]daySchedule // small cache of appliance schedules
	next int            // round-robin slot in days

	dstYear          int   // year whose summer time bounds are cached
	dstFrom, dstTill int64 // summer time of dstYear, unix seconds
}

// New returns a simulated meter for profile p, deterministic for seed, whose
// registers hold p.Start at time start (truncated to the second).
func New(p Profile, seed int64, start time.Time) *Meter {
	if p.Phases == 0 {
		p.Phases = 3
	}
	s := start.Unix()
	m := &Meter{p: p, idHex: string(appendHex(nil, p.MeterID)), seed: uint64(seed), start: s, cur: s, gas5T: s - mod(s, 300)}
	for i := range m.days {
		m.days[i].day = math.MinInt64
	}
	return m
}

// Profile returns the meter's profile.
func (m *Meter) Profile() Profile { return m.p }

// Start returns the time the registers started at.
func (m *Meter) Start() time.Time { return time.Unix(m.start, 0) }

// Sample is the state of the household during one second.
type Sample struct {
	Time    time.Time // start of the second, in the meter's zone (CET/CEST)
	LoadW   int64     // household consumption
	SolarW  int64     // panel production
	ImportW int64     // drawn from the grid, netted over the phases as the meter does
	ExportW int64     // delivered to the grid
	Phases  [3]PhaseSample
	Tariff  int   // 1 low, 2 normal (Dutch convention)
	GasMLs  int64 // gas flow in millilitres per second
}

// PhaseSample is one phase's part of a Sample.
type PhaseSample struct {
	LoadW, SolarW    int64
	ImportW, ExportW int64
	VoltageMV        int64 // rounded to 0.1 V as the telegram shows it
	CurrentMA        int64 // rounded to whole amperes as the telegram shows it
}

// NetW is import minus export: positive when the household draws power.
func (s Sample) NetW() int64 { return s.ImportW - s.ExportW }

// Power returns the household's state during the second that contains t.
// It does not move the registers.
func (m *Meter) Power(t time.Time) Sample { return m.sample(t.Unix()) }

// Advance integrates the registers up to t. Times before the last advance
// are ignored: registers never go back.
func (m *Meter) Advance(t time.Time) {
	target := t.Unix()
	for s := m.cur; s < target; s++ {
		smp := m.sample(s)
		ti := smp.Tariff - 1
		m.impWs[ti] += smp.ImportW
		m.expWs[ti] += smp.ExportW
		m.gasML += smp.GasMLs
		if mod(s+1, 300) == 0 {
			m.gas5, m.gas5T = m.gasML, s+1
		}
	}
	m.cur = max(m.cur, target)
}

// Registers are the meter's counters at the last Advance.
type Registers struct {
	ImportWh [2]int64 // tariff 1, tariff 2
	ExportWh [2]int64
	GasL     int64 // litres (m3 x 1000) at the last 5-minute boundary, as DSMR 5 reports it
	GasTime  time.Time
}

// Registers returns the counters, integrated up to the last Advance.
func (m *Meter) Registers() Registers {
	st := m.p.Start
	return Registers{
		ImportWh: [2]int64{st.ImportT1Wh + m.impWs[0]/3600, st.ImportT2Wh + m.impWs[1]/3600},
		ExportWh: [2]int64{st.ExportT1Wh + m.expWs[0]/3600, st.ExportT2Wh + m.expWs[1]/3600},
		GasL:     st.GasL + m.gas5/1000,
		GasTime:  meterTime(m.gas5T),
	}
}

// Reading advances the registers to now and returns what a DSMR decoder
// reads from the telegram the meter sends at now: the same values, at the
// telegram's resolution (W, Wh, 0.1 V, whole A, litres).
func (m *Meter) Reading(now time.Time) meter.Reading {
	m.Advance(now)
	s := m.sample(now.Unix())
	reg := m.Registers()
	r := meter.Reading{
		Time:         s.Time,
		Protocol:     "dsmr",
		Version:      "50",
		Header:       m.p.Header,
		MeterID:      m.idHex,
		PowerImportW: meter.Some(s.ImportW),
		PowerExportW: meter.Some(s.ExportW),
		EnergyImport: meter.Registers{
			Total:   meter.Some(reg.ImportWh[0] + reg.ImportWh[1]),
			Tariff1: meter.Some(reg.ImportWh[0]),
			Tariff2: meter.Some(reg.ImportWh[1]),
		},
		EnergyExport: meter.Registers{
			Total:   meter.Some(reg.ExportWh[0] + reg.ExportWh[1]),
			Tariff1: meter.Some(reg.ExportWh[0]),
			Tariff2: meter.Some(reg.ExportWh[1]),
		},
		Tariff:     s.Tariff,
		ChecksumOK: true,
	}
	for i := range m.p.Phases {
		ph := s.Phases[i]
		r.Phases[i] = meter.Phase{
			VoltageMV:    meter.Some(ph.VoltageMV),
			CurrentMA:    meter.Some(ph.CurrentMA),
			PowerImportW: meter.Some(ph.ImportW),
			PowerExportW: meter.Some(ph.ExportW),
		}
	}
	if m.p.Gas != nil {
		r.Gas = &meter.SubMeter{Channel: 1, DeviceType: 3, Milli: reg.GasL, Unit: "m3", Time: reg.GasTime}
	}
	return r
}

// Zones of Dutch, Belgian and Luxembourg meters; DSMR's S/W flag picks one.
var (
	zoneCET  = time.FixedZone("CET", 3600)
	zoneCEST = time.FixedZone("CEST", 7200)
)

// meterTime returns unix second s in the meter's zone: CET, or CEST during
// EU summer time (last Sunday of March 01:00 UTC to last Sunday of October
// 01:00 UTC).
func meterTime(s int64) time.Time {
	return zoneTime(s, summerTime(s))
}

func zoneTime(s int64, summer bool) time.Time {
	if summer {
		return time.Unix(s, 0).In(zoneCEST)
	}
	return time.Unix(s, 0).In(zoneCET)
}

func summerTime(s int64) bool {
	y := time.Unix(s, 0).UTC().Year()
	return s >= lastSunday(y, time.March) && s < lastSunday(y, time.October)
}

// lastSunday returns 01:00 UTC on the last Sunday of month in year.
func lastSunday(year int, month time.Month) int64 {
	d := time.Date(year, month+1, 1, 1, 0, 0, 0, time.UTC).AddDate(0, 0, -1)
	d = d.AddDate(0, 0, -int(d.Weekday()))
	return d.Unix()
}

// summer is summerTime with the year's bounds cached.
func (m *Meter) summer(s int64) bool {
	if y := time.Unix(s, 0).UTC().Year(); y != m.dstYear {
		m.dstYear, m.dstFrom, m.dstTill = y, lastSunday(y, time.March), lastSunday(y, time.October)
	}
	return s >= m.dstFrom && s < m.dstTill
}

// sample computes the household's state during unix second s.
func (m *Meter) sample(s int64) Sample {
	lt := zoneTime(s, m.summer(s))
	_, off := lt.Zone()
	local := s + int64(off)
	day := floorDiv(local, 86400)
	hod := float64(mod(local, 86400)) / 3600
	weekday := lt.Weekday()
	weekend := weekday == time.Saturday || weekday == time.Sunday
	doy := lt.YearDay()
	winter := (1 + math.Cos(2*math.Pi*float64(doy-15)/365.25)) / 2

	var out Sample
	out.Time = lt
	phases := m.p.Phases

	// Base load: standby plus the hour's activity, with jitter.
	b := m.p.Base
	h0 := int(hod)
	frac := hod - float64(h0)
	base := float64(b.StandbyW) + float64(b.HourlyW[h0])*(1-frac) + float64(b.HourlyW[(h0+1)%24])*frac
	if b.NoiseW > 0 {
		base += float64(int64(mix(m.seed, uint64(s), 1)%uint64(2*b.NoiseW+1)) - int64(b.NoiseW))
	}
	baseW := max(int64(math.Round(base)), 0)
	var load [3]int64
	if phases == 1 {
		load[0] = baseW
	} else {
		l1 := int64(math.Round(float64(baseW) * b.Split[0]))
		l2 := int64(math.Round(float64(baseW) * b.Split[1]))
		load[0], load[1], load[2] = l1, l2, max(baseW-l1-l2, 0)
	}

	// Appliances.
	for i, a := range m.p.Appliances {
		var w int64
		if a.Always {
			w = m.alwaysW(i, s)
		} else {
			w = m.applianceW(i, s, day) + m.applianceW(i, s, day-1)
		}
		if w > 0 {
			addPhase(&load, a.Phase, phases, w)
		}
	}

	// Solar.
	clear := m.clearSkyFrac(s, doy)
	var solar [3]int64
	if sp := m.p.Solar; sp != nil && sp.PeakW > 0 {
		w := m.solarW(clear, winter, day, local)
		if w > 0 {
			addPhase(&solar, sp.Phase, phases, w)
		}
	}

	// Per phase, then netted totals as the meter measures them.
	var net int64
	for i := range phases {
		ph := &out.Phases[i]
		ph.LoadW, ph.SolarW = load[i], solar[i]
		n := load[i] - solar[i]
		net += n
		if n >= 0 {
			ph.ImportW = n
		} else {
			ph.ExportW = -n
		}
		out.LoadW += load[i]
		out.SolarW += solar[i]
		// Voltage: nominal, a fixed offset per phase, the street's solar
		// lifting it at midday, this household's own flow, jitter.
		v := 230000.0 + float64(int64(mix(m.seed, uint64(i), 2)%5001)-2500)
		v += 4000 * clear
		v -= 0.45 * float64(n)
		v += float64(int64(mix(m.seed, uint64(s), 3+uint64(i))%601) - 300)
		ph.VoltageMV = int64(math.Round(v/100)) * 100
		abs := max(n, -n)
		ph.CurrentMA = (abs*1000 + ph.VoltageMV/2) / ph.VoltageMV * 1000
	}
	if net >= 0 {
		out.ImportW = net
	} else {
		out.ExportW = -net
	}
	out.Tariff = 2
	if weekend || h0 >= 23 || h0 < 7 {
		out.Tariff = 1
	}

	if g := m.p.Gas; g != nil {
		var sum float64
		for _, x := range g.Hourly {
			sum += x
		}
		if sum > 0 {
			perDay := g.SummerM3PerDay + (g.WinterM3PerDay-g.SummerM3PerDay)*winter
			out.GasMLs = int64(math.Round(perDay * 1e6 * g.Hourly[h0] / sum / 3600))
		}
	}
	return out
}

// addPhase adds w to one phase, or spreads it over three (phase 0).
func addPhase(acc *[3]int64, phase, phases int, w int64) {
	switch {
	case phases == 1 || phase == 1:
		acc[0] += w
	case phase == 2 || phase == 3:
		acc[phase-1] += w
	default:
		third := w / 3
		acc[0] += w - 2*third
		acc[1] += third
		acc[2] += third
	}
}

// alwaysW is the power of an appliance that loops its steps all day.
func (m *Meter) alwaysW(i int, s int64) int64 {
	a := &m.p.Appliances[i]
	var period int64
	for _, st := range a.Steps {
		period += int64(st.Seconds)
	}
	pos := mod(s+int64(mix(m.seed, uint64(i), 4)%uint64(period)), period)
	return stepW(a.Steps, pos, 1)
}

// stepW is the power pos seconds into a program whose steps last scale
// times their nominal length.
func stepW(steps []Step, pos int64, scale float64) int64 {
	for _, st := range steps {
		d := int64(math.Round(float64(st.Seconds) * scale))
		if pos < d {
			if st.OnS > 0 && st.OffS > 0 && mod(pos, int64(st.OnS+st.OffS)) >= int64(st.OnS) {
				return 0
			}
			return int64(st.W)
		}
		pos -= d
	}
	return 0
}

// run is one start of an appliance.
type run struct {
	start, end int64
	scale      float64
}

// daySchedule holds the runs of every appliance started on one local day.
type daySchedule struct {
	day  int64
	runs [][]run // per appliance
}

// applianceW is the power of appliance i at second s from runs started on
// local day day.
func (m *Meter) applianceW(i int, s int64, day int64) int64 {
	for _, r := range m.schedule(day).runs[i] {
		if s >= r.start && s < r.end {
			return stepW(m.p.Appliances[i].Steps, s-r.start, r.scale)
		}
	}
	return 0
}

// schedule returns (and caches) the appliance runs of local day day.
func (m *Meter) schedule(day int64) *daySchedule {
	for i := range m.days {
		if m.days[i].day == day {
			return &m.days[i]
		}
	}
	ds := &m.days[m.next]
	m.next = (m.next + 1) % len(m.days)
	ds.day = day
	ds.runs = make([][]run, len(m.p.Appliances))
	// The local midnight in unix seconds: the offset at noon is right for
	// the whole day except the hour around a DST change.
	noon := day*86400 + 12*3600 - 3600
	_, off := meterTime(noon).Zone()
	midnight := day*86400 - int64(off)
	wd := time.Unix(day*86400, 0).UTC().Weekday()
	weekend := wd == time.Saturday || wd == time.Sunday
	doy := time.Unix(day*86400, 0).UTC().YearDay()
	winter := (1 + math.Cos(2*math.Pi*float64(doy-15)/365.25)) / 2
	for i, a := range m.p.Appliances {
		if a.Always || len(a.Windows) == 0 {
			continue
		}
		rng := newRNG(mix(m.seed, uint64(day), 5, uint64(i)))
		lambda := a.RunsPerDay
		if weekend {
			switch {
			case a.WeekendRuns != nil:
				lambda = *a.WeekendRuns
			case a.WeekendFac > 0:
				lambda *= a.WeekendFac
			}
		}
		lambda *= (1 - a.Season) + 2*a.Season*winter
		n := int(lambda)
		if rng.float() < lambda-float64(n) {
			n++
		}
		var total float64
		for _, w := range a.Windows {
			total += w[1] - w[0]
		}
		var nominal int64
		for _, st := range a.Steps {
			nominal += int64(st.Seconds)
		}
		runs := make([]run, 0, n)
		for range n {
			x := rng.float() * total
			var startH float64
			for _, w := range a.Windows {
				if x < w[1]-w[0] {
					startH = w[0] + x
					break
				}
				x -= w[1] - w[0]
				startH = w[1]
			}
			scale := 1 + a.Jitter*(2*rng.float()-1)
			st := midnight + int64(startH*3600)
			runs = append(runs, run{start: st, end: st + int64(math.Round(float64(nominal)*scale)) + int64(len(a.Steps)), scale: scale})
		}
		sort.Slice(runs, func(x, y int) bool { return runs[x].start < runs[y].start })
		for k := 1; k < len(runs); k++ {
			if runs[k].start < runs[k-1].end {
				d := runs[k].end - runs[k].start
				runs[k].start = runs[k-1].end + 60
				runs[k].end = runs[k].start + d
			}
		}
		ds.runs[i] = runs
	}
	return ds
}

// sunSin returns the sine of the sun's elevation at unix second s.
func (m *Meter) sunSin(s int64, doy int) float64 {
	lat := m.p.Latitude * math.Pi / 180
	decl := 23.44 * math.Pi / 180 * math.Sin(2*math.Pi*float64(284+doy)/365)
	b := 2 * math.Pi * float64(doy-81) / 364
	eot := 9.87*math.Sin(2*b) - 7.53*math.Cos(b) - 1.5*math.Sin(b) // minutes
	utcH := float64(mod(s, 86400)) / 3600
	solarH := utcH + m.p.Longitude/15 + eot/60
	ha := (solarH - 12) * 15 * math.Pi / 180
	return math.Sin(lat)*math.Sin(decl) + math.Cos(lat)*math.Cos(decl)*math.Cos(ha)
}

// clearSkyFrac is the share of peak output tilted panels give in a clear
// sky at unix second s.
func (m *Meter) clearSkyFrac(s int64, doy int) float64 {
	e := m.sunSin(s, doy)
	if e <= 0 {
		return 0
	}
	return min(1.1*math.Pow(e, 0.9)*(1-math.Exp(-12*e)), 1)
}

// solarW is the panels' output: the clear-sky share clear times
// the clouds. Clouds come in three-minute cells, shaded or not, with the
// day's cover deciding how many are shaded; output ramps between cells.
func (m *Meter) solarW(clear, winter float64, day, local int64) int64 {
	sp := m.p.Solar
	if clear <= 0 {
		return 0
	}
	dayRNG := newRNG(mix(m.seed, uint64(day), 6))
	cover := sp.Cloudiness + 0.3*(winter-0.5) + 0.9*(dayRNG.float()-0.5)
	cover = min(max(cover, 0), 1)
	const cell = 180
	k := floorDiv(local, cell)
	f := float64(mod(local, cell)) / cell
	att := m.cellAtt(k, cover)*(1-f) + m.cellAtt(k+1, cover)*f
	w := int64(math.Round(float64(sp.PeakW) * clear * att))
	if w < 15 {
		return 0 // inverters switch off below a few watts
	}
	return min(w, int64(sp.PeakW))
}

// cellAtt is the share of clear-sky output that reaches the panels in
// cloud cell k when the day's cover is cover.
func (m *Meter) cellAtt(k int64, cover float64) float64 {
	r := newRNG(mix(m.seed, uint64(k), 7))
	shaded, depth := r.float(), r.float()
	if shaded < cover {
		return 0.12 + 0.4*depth*(1-cover)
	}
	return 0.97 + 0.06*depth
}

// mix hashes its arguments into one well-spread 64-bit value (splitmix64
// steps).
func mix(vs ...uint64) uint64 {
	h := uint64(0x9E3779B97F4A7C15)
	for _, v := range vs {
		h ^= v
		h = splitmix(h)
	}
	return h
}

func splitmix(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ x>>30) * 0xBF58476D1CE4E5B9
	x = (x ^ x>>27) * 0x94D049BB133111EB
	return x ^ x>>31
}

// rng is a small deterministic generator (splitmix64).
type rng struct{ s uint64 }

func newRNG(seed uint64) *rng { return &rng{s: seed} }

func (r *rng) next() uint64 {
	r.s += 0x9E3779B97F4A7C15
	return splitmix(r.s)
}

// float returns a value in [0, 1).
func (r *rng) float() float64 { return float64(r.next()>>11) / (1 << 53) }

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func mod(a, b int64) int64 { return a - floorDiv(a, b)*b }
