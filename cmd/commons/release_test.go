package main

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/commons-energy/commons/share"
)

// The release the tests make: a version and a commit that no real build
// has, so that seeing them proves they were embedded.
const (
	releaseVersion = "1.2.3-rc1"
	releaseCommit  = "c0ffee0123456789abcdef0123456789abcdef01"
)

// releaseTarget is one architecture release.sh builds.
type releaseTarget struct {
	name    string // binary suffix: commons_VERSION_linux_NAME
	deb     string // deb suffix: commons_VERSION_DEB.deb
	debArch string // the deb's Architecture field
	machine elf.Machine
	emu     []string // emulator command line before the binary; nil = native
}

var releaseTargets = []releaseTarget{
	{name: "amd64", deb: "amd64", debArch: "amd64", machine: elf.EM_X86_64},
	{name: "arm64", deb: "arm64", debArch: "arm64", machine: elf.EM_AARCH64, emu: []string{"qemu-aarch64-static"}},
	// A Cortex-A7 (Pi 2) for ARMv7 and an ARM1176 (Pi 1, Zero) for ARMv6.
	{name: "armv7", deb: "armhf", debArch: "armhf", machine: elf.EM_ARM, emu: []string{"qemu-arm-static", "-cpu", "cortex-a7"}},
	{name: "armv6", deb: "armhf-armv6", debArch: "armhf", machine: elf.EM_ARM, emu: []string{"qemu-arm-static", "-cpu", "arm1176"}},
}

// requireTool returns the path of a tool the release tests need. Missing,
// it fails the test under CI (CI=true) and skips it elsewhere: ./test.sh
// installs it.
func requireTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not found: install the Debian package %s (./test.sh does)", name, pkg)
	}
	t.Skipf("%s not found: install the Debian package %s (./test.sh does) to run this test", name, pkg)
	return ""
}

// emulated writes a script that runs bin under the emulator command line
// emu (or directly when emu is empty), so that the household tests' cli
// helper can drive it like a native binary.
func emulated(t *testing.T, bin string, emu []string) string {
	t.Helper()
	if len(emu) == 0 {
		return bin
	}
	var b strings.Builder
	b.WriteString("#!/bin/sh\nexec")
	for _, a := range append(slices.Clone(emu), bin) {
		b.WriteString(" '" + strings.ReplaceAll(a, "'", `'\''`) + "'")
	}
	b.WriteString(" \"$@\"\n")
	script := filepath.Join(t.TempDir(), "commons-"+filepath.Base(emu[0]))
	if err := os.WriteFile(script, []byte(b.String()), 0o755); err != nil {
		t.Fatal(err)
	}
	return script
}

// runRelease runs ./release.sh into a temporary folder and returns it.
func runRelease(t *testing.T) string {
	t.Helper()
	dist := t.TempDir()
	cmd := exec.Command("./release.sh", releaseVersion)
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "DIST="+dist, "COMMIT="+releaseCommit, "SOURCE_DATE_EPOCH=1767225600")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("./release.sh %s: %v\n%s", releaseVersion, err, out)
	}
	t.Logf("release.sh took %v", time.Since(start).Round(time.Millisecond))
	return dist
}

// TestRelease runs release.sh and proves what it makes: static binaries
// for amd64, arm64, ARMv7 and ARMv6 that report the embedded version,
// decode every meter fixture byte for byte like the amd64 binary and run
// the README's two-household walkthrough under emulation; and .deb
// packages that install into an empty root with their user, groups, home
// and unit.
func TestRelease(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a release for four architectures")
	}
	for _, tool := range []string{"qemu-aarch64-static", "qemu-arm-static"} {
		requireTool(t, tool, "qemu-user-static")
	}
	requireTool(t, "dpkg-deb", "dpkg")
	dist := runRelease(t)
	bins := map[string]string{} // target name -> runnable (wrapped) binary
	for _, tg := range releaseTargets {
		bins[tg.name] = emulated(t, filepath.Join(dist, "commons_"+releaseVersion+"_linux_"+tg.name), tg.emu)
	}

	t.Run("binaries", func(t *testing.T) {
		for _, tg := range releaseTargets {
			checkStaticELF(t, filepath.Join(dist, "commons_"+releaseVersion+"_linux_"+tg.name), tg.machine)
		}
	})

	t.Run("version", func(t *testing.T) {
		for _, tg := range releaseTargets {
			c := newCLI(t, bins[tg.name])
			line := c.ok("--version")
			if !strings.HasPrefix(line, "commons "+releaseVersion+" (commit "+releaseCommit+", go") || !strings.HasSuffix(line, ", protocol 2)\n") {
				t.Errorf("%s: --version = %q", tg.name, line)
			}
			var v versionInfo
			c.json(&v, "version", "--json")
			if v.Version != releaseVersion || v.Commit != releaseCommit || v.Protocol != share.ProtocolVersion || !strings.HasPrefix(v.Go, "go1.") {
				t.Errorf("%s: version --json = %+v", tg.name, v)
			}
		}
		// The emulated CPUs are what they claim: the ARMv7 build refuses
		// to start on the Pi 1's ARM1176, so the ARMv6 build passing
		// above means it runs there.
		v7 := emulated(t, filepath.Join(dist, "commons_"+releaseVersion+"_linux_armv7"), []string{"qemu-arm-static", "-cpu", "arm1176"})
		if out, err := exec.Command(v7, "--version").CombinedOutput(); err == nil {
			t.Errorf("the ARMv7 binary ran on an emulated ARM1176 (%q): the ARMv6 check proves nothing", out)
		}
	})

	t.Run("meter decode", func(t *testing.T) {
		fx := sharedFixtures(t)
		runs := meterDecodeRuns(t, fx)
		want := map[string]string{}
		for _, tg := range releaseTargets {
			start := time.Now()
			for i, args := range runs {
				cmd := exec.Command(bins[tg.name], args...)
				cmd.Dir = fx
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				err := cmd.Run()
				got := fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", exitCode(err), stdout.Bytes(), stderr.Bytes())
				if tg.name == "amd64" {
					if stdout.Len() == 0 {
						t.Fatalf("amd64: meter decode %v printed nothing", args)
					}
					want[strconv.Itoa(i)] = got
					continue
				}
				if got != want[strconv.Itoa(i)] {
					t.Errorf("%s: meter decode %s differs from amd64:\n%s", tg.name, strings.Join(args[:min(len(args), 4)], " "), firstDiff(want[strconv.Itoa(i)], got))
				}
			}
			t.Logf("%s: meter decode of every fixture took %v", tg.name, time.Since(start).Round(time.Millisecond))
		}
	})

	t.Run("walkthrough", func(t *testing.T) {
		for _, tg := range releaseTargets {
			if tg.name == "amd64" || tg.name == "armv6" {
				continue // natively covered by TestHouseholdCLI; ARMv6 shares the ARM code with ARMv7
			}
			t.Run(tg.name, func(t *testing.T) {
				t.Parallel()
				start := time.Now()
				readmeWalkthrough(t, newCLI(t, bins[tg.name]))
				t.Logf("walkthrough under %s took %v", tg.emu[0], time.Since(start).Round(time.Millisecond))
			})
		}
	})

	t.Run("packages", func(t *testing.T) {
		for _, tg := range releaseTargets {
			checkDeb(t, dist, tg)
		}
	})

	t.Run("install", func(t *testing.T) {
		requireTool(t, "dpkg", "dpkg")
		if os.Geteuid() != 0 {
			if os.Getenv("CI") == "true" {
				t.Fatal("installing the .deb into a throwaway root needs root (useradd --root chroots)")
			}
			t.Skip("installing the .deb into a throwaway root needs root (useradd --root chroots)")
		}
		installDeb(t, filepath.Join(dist, "commons_"+releaseVersion+"_amd64.deb"))
	})
}

// checkStaticELF fails unless path is an executable for machine with no
// program interpreter and no shared libraries: it runs on any Linux of its
// architecture.
func checkStaticELF(t *testing.T, path string, machine elf.Machine) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer f.Close()
	if f.Machine != machine {
		t.Errorf("%s: machine %v, want %v", filepath.Base(path), f.Machine, machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s: dynamically linked (program header %v)", filepath.Base(path), p.Type)
		}
	}
	if f.Section(".symtab") != nil {
		t.Errorf("%s: not stripped (-s -w)", filepath.Base(path))
	}
}

// meterDecodeRuns lists the `meter decode --json` command lines that cover
// every fixture: all files in one run, and each Smarty frame again with
// its published key. Paths are relative to the fixtures folder.
func meterDecodeRuns(t *testing.T, fx string) [][]string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(fx, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Dir(p) == fx {
			return err // files at the top are README.md and expected.json
		}
		rel, err := filepath.Rel(fx, p)
		files = append(files, rel)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	if len(files) < 100 {
		t.Fatalf("only %d fixtures in %s", len(files), fx)
	}
	runs := [][]string{append([]string{"meter", "decode", "--json"}, files...)}

	raw, err := os.ReadFile(filepath.Join(fx, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var expected struct {
		Files map[string]struct {
			KeyHex string `json:"key_hex"`
		} `json:"files"`
	}
	if err := json.Unmarshal(raw, &expected); err != nil {
		t.Fatalf("expected.json: %v", err)
	}
	var keyed []string
	for f, e := range expected.Files {
		if e.KeyHex != "" {
			keyed = append(keyed, f)
		}
	}
	slices.Sort(keyed)
	if len(keyed) == 0 {
		t.Fatal("expected.json lists no Smarty frame with a key")
	}
	for _, f := range keyed {
		runs = append(runs, []string{"meter", "decode", "--json", "--key", expected.Files[f].KeyHex, f})
	}
	return runs
}

// firstDiff shows where two outputs part.
func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range max(len(al), len(bl)) {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return fmt.Sprintf("line %d:\namd64: %s\nhere:  %s", i+1, x, y)
		}
	}
	return "(same lines, different bytes)"
}

// readmeWalkthrough runs the README's "Two households, one pledge" steps
// with c, as written there: two homes, invites exchanged, a pledge carried
// as an armored file, the acceptance carried back through a pipe, both
// ledgers verified and the same pledge accepted on both sides.
func readmeWalkthrough(t *testing.T, c *cli) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "A"), filepath.Join(dir, "B")
	c.ok("--home", a, "init", "--name", "Alice")
	var ida, idb idJSON
	c.json(&ida, "--home", a, "id", "--json")
	c.ok("--home", b, "init", "--name", "Bob", "--join", ida.Invite)
	c.json(&idb, "--home", b, "id", "--json")
	c.ok("--home", a, "neighbours", "add", idb.Invite)

	var p pledgeJSON
	c.json(&p, "--home", a, "pledge", "--to", "Bob", "--energy", "1.5kWh", "--window", "next-hour", "--json")
	if p.ID == "" || p.EnergyWh != 1500 || p.State != "pledged" {
		t.Fatalf("pledge --json = %+v", p)
	}
	alice := filepath.Join(dir, "alice.txt")
	if err := os.WriteFile(alice, []byte(c.ok("--home", a, "export-messages")), 0o600); err != nil {
		t.Fatal(err)
	}
	c.ok("--home", b, "import", alice)
	if out := c.ok("--home", b, "pledges"); !strings.Contains(out, "pledged") {
		t.Fatalf("B pledges after import:\n%s", out)
	}
	c.ok("--home", b, "accept", p.ID)
	if r := c.run(c.ok("--home", b, "export-messages"), "--home", a, "import", "-"); r.code != 0 {
		t.Fatalf("A import -: exit %d: %s", r.code, r.stderr)
	}
	for _, h := range []string{a, b} {
		c.ok("--home", h, "ledger", "verify")
		var ps []pledgeJSON
		c.json(&ps, "--home", h, "pledges", "--json")
		if len(ps) != 1 || ps[0].ID != p.ID || ps[0].State != "accepted" || ps[0].From != ida.ID || ps[0].To != idb.ID || ps[0].EnergyWh != 1500 {
			t.Fatalf("pledges --json in %s = %+v, want pledge %s accepted", filepath.Base(h), ps, p.ID)
		}
	}
}

// checkDeb checks one package's control fields and contents: the
// architecture, the version, the binary of its target, the unit, and the
// maintainer scripts.
func checkDeb(t *testing.T, dist string, tg releaseTarget) {
	t.Helper()
	deb := filepath.Join(dist, "commons_"+releaseVersion+"_"+tg.deb+".deb")
	field := func(name string) string {
		out, err := exec.Command("dpkg-deb", "--field", deb, name).Output()
		if err != nil {
			t.Fatalf("dpkg-deb --field %s %s: %v", filepath.Base(deb), name, err)
		}
		return strings.TrimSpace(string(out))
	}
	if got := field("Package"); got != "commons" {
		t.Errorf("%s: Package %q", filepath.Base(deb), got)
	}
	if got := field("Architecture"); got != tg.debArch {
		t.Errorf("%s: Architecture %q, want %q", filepath.Base(deb), got, tg.debArch)
	}
	if got := field("Version"); got != "1.2.3~rc1" {
		t.Errorf("%s: Version %q, want 1.2.3~rc1 (sorts before 1.2.3)", filepath.Base(deb), got)
	}
	root := t.TempDir()
	if out, err := exec.Command("dpkg-deb", "--extract", deb, root).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb --extract %s: %v\n%s", filepath.Base(deb), err, out)
	}
	got, err := os.ReadFile(filepath.Join(root, "usr", "bin", "commons"))
	if err != nil {
		t.Fatalf("%s: %v", filepath.Base(deb), err)
	}
	want, err := os.ReadFile(filepath.Join(dist, "commons_"+releaseVersion+"_linux_"+tg.name))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: /usr/bin/commons is not the %s binary", filepath.Base(deb), tg.name)
	}
	if fi, err := os.Stat(filepath.Join(root, "usr", "bin", "commons")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("%s: /usr/bin/commons missing or not mode 0755: %v", filepath.Base(deb), err)
	}
	unit, err := os.ReadFile(filepath.Join(root, "lib", "systemd", "system", "commons.service"))
	if err != nil {
		t.Fatalf("%s: no unit: %v", filepath.Base(deb), err)
	}
	checkUnitPaths(t, string(unit))

	ctl := t.TempDir()
	if out, err := exec.Command("dpkg-deb", "--control", deb, ctl).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb --control: %v\n%s", err, out)
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		if fi, err := os.Stat(filepath.Join(ctl, s)); err != nil || fi.Mode().Perm()&0o111 == 0 {
			t.Errorf("%s: maintainer script %s missing or not executable: %v", filepath.Base(deb), s, err)
		}
	}
}

// checkUnitPaths: the unit runs the binary where the package puts it, with
// COMMONS_HOME the home postinst makes, and waits for that household.
func checkUnitPaths(t *testing.T, unit string) {
	t.Helper()
	for _, want := range []string{
		"ExecStart=/usr/bin/commons daemon ",
		"Environment=COMMONS_HOME=/var/lib/commons\n",
		"StateDirectory=commons\n",
		"ConditionPathExists=/var/lib/commons/config.json\n",
		"User=commons\n",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q", strings.TrimSpace(want))
		}
	}
}

// installDeb installs deb into an empty root with dpkg --root, running its
// maintainer scripts outside a chroot with DPKG_ROOT set (the root has no
// shell to chroot into), and checks what the package made. It installs
// twice (postinst must be idempotent) and removes the package (the
// household's home and user stay).
func installDeb(t *testing.T, deb string) {
	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "etc", "usr/sbin"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"var/lib/dpkg/status": "",
		"etc/passwd":          "root:x:0:0:root:/root:/bin/sh\n",
		"etc/shadow":          "root:*:20000:0:99999:7:::\n",
		"etc/group":           "root:x:0:\ndialout:x:20:\n",
		"etc/gshadow":         "root:*::\ndialout:*::\n",
		"usr/sbin/nologin":    "#!/bin/sh\nexit 1\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(root, "usr/sbin/nologin"), 0o755); err != nil {
		t.Fatal(err)
	}
	dpkg := func(args ...string) {
		t.Helper()
		args = append([]string{"--root=" + root, "--log=/dev/null", "--force-script-chrootless", "--force-depends"}, args...)
		cmd := exec.Command("dpkg", args...)
		// dpkg looks for ldconfig and start-stop-daemon on PATH. DPKG_ROOT,
		// which dpkg sets for the scripts, keeps them off this machine's
		// users and systemd.
		cmd.Env = append(os.Environ(), "PATH="+os.Getenv("PATH")+":/usr/sbin:/sbin")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("dpkg %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	entry := func(file, name string) []string {
		var found []string
		for line := range strings.SplitSeq(read(file), "\n") {
			if f := strings.Split(line, ":"); f[0] == name {
				if found != nil {
					t.Fatalf("%s lists %s twice", file, name)
				}
				found = f
			}
		}
		return found
	}
	check := func(when string) {
		t.Helper()
		if fi, err := os.Stat(filepath.Join(root, "usr/bin/commons")); err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: /usr/bin/commons missing or not mode 0755: %v", when, err)
		}
		checkUnitPaths(t, read("lib/systemd/system/commons.service"))
		user := entry("etc/passwd", "commons")
		if user == nil {
			t.Fatalf("%s: no user commons in /etc/passwd:\n%s", when, read("etc/passwd"))
		}
		if user[5] != "/var/lib/commons" || user[6] != "/usr/sbin/nologin" {
			t.Errorf("%s: commons user %q: want home /var/lib/commons, shell nologin", when, user)
		}
		if uid, _ := strconv.Atoi(user[2]); uid == 0 || uid >= 1000 {
			t.Errorf("%s: commons uid %s is not a system uid", when, user[2])
		}
		group := entry("etc/group", "commons")
		if group == nil || group[2] != user[3] {
			t.Errorf("%s: commons's primary group %s is not the group commons %q", when, user[3], group)
		}
		for _, g := range []string{"commons-owners", "commons-viewers"} {
			if entry("etc/group", g) == nil {
				t.Errorf("%s: no group %s in /etc/group:\n%s", when, g, read("etc/group"))
			}
		}
		if d := entry("etc/group", "dialout"); d == nil || !slices.Contains(strings.Split(d[3], ","), "commons") {
			t.Errorf("%s: commons is not in dialout: %q", when, d)
		}
		fi, err := os.Stat(filepath.Join(root, "var/lib/commons"))
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if !fi.IsDir() || fi.Mode().Perm() != 0o711 {
			t.Fatalf("%s: /var/lib/commons is %v, want a 0711 folder (the socket reachable, the folder unlisted)", when, fi.Mode())
		}
		if st := fi.Sys().(*syscall.Stat_t); strconv.Itoa(int(st.Uid)) != user[2] || strconv.Itoa(int(st.Gid)) != user[3] {
			t.Errorf("%s: /var/lib/commons owned by %d:%d, want commons %s:%s", when, st.Uid, st.Gid, user[2], user[3])
		}
	}

	dpkg("--install", deb)
	check("first install")
	passwd, group := read("etc/passwd"), read("etc/group")
	dpkg("--install", deb) // an upgrade or reinstall: postinst configure OLD-VERSION
	check("reinstall")
	if read("etc/passwd") != passwd || read("etc/group") != group {
		t.Errorf("reinstalling changed the users or groups:\n%s\n%s", read("etc/passwd"), read("etc/group"))
	}
	dpkg("--remove", "commons")
	for _, gone := range []string{"usr/bin/commons", "lib/systemd/system/commons.service"} {
		if _, err := os.Stat(filepath.Join(root, gone)); err == nil {
			t.Errorf("after remove: /%s still there", gone)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "var/lib/commons")); err != nil || entry("etc/passwd", "commons") == nil {
		t.Errorf("after remove: the household's home and user must stay: %v", err)
	}
}

// TestReleaseUsage: release.sh refuses a missing or malformed version with
// one line and exit 2, before building anything.
func TestReleaseUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"1.2"}, {"latest"}, {"1.2.3", "extra"}, {"1.2.3 -X main.commit=x"}} {
		dist := t.TempDir()
		cmd := exec.Command("./release.sh", args...)
		cmd.Dir = filepath.Join("..", "..")
		cmd.Env = append(os.Environ(), "DIST="+dist)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if code := exitCode(err); code != exitUsage || stdout.Len() != 0 || strings.Count(stderr.String(), "\n") != 1 {
			t.Errorf("release.sh %q: exit %d, stdout %q, stderr %q; want exit 2 and one line on stderr", args, code, stdout.String(), stderr.String())
		}
		if entries, _ := os.ReadDir(dist); len(entries) != 0 {
			t.Errorf("release.sh %q wrote %d files", args, len(entries))
		}
	}
}
