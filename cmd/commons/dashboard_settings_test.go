package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	daemonpkg "github.com/commons-energy/commons/share/daemon"
)

// programFPS is the frame-rate cap that opts set on a program. Bubble Tea
// keeps it unexported; reading it is the only way to see what a
// ProgramOption does without running a terminal.
func programFPS(t *testing.T, opts []tea.ProgramOption) int64 {
	t.Helper()
	p := tea.NewProgram(nil, opts...)
	f := reflect.ValueOf(p).Elem().FieldByName("fps")
	if !f.IsValid() {
		t.Fatal("tea.Program has no fps field any more: update programFPS")
	}
	return f.Int()
}

// TestSSHDashboardGetsLocalSettings: an SSH session's dashboard runs with
// the same frame-rate cap and the same settings file as a local one.
func TestSSHDashboardGetsLocalSettings(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	if err := os.MkdirAll(filepath.Join(dir, "commons"), 0o700); err != nil {
		t.Fatal(err)
	}
	body := `{"colour": "256", "background": "light", "ascii": true}`
	if err := os.WriteFile(filepath.Join(dir, "commons", "dashboard.json"), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	local, err := dashboardOptions()
	if err != nil {
		t.Fatal(err)
	}
	if got := programFPS(t, local.prog); got != dashboardFPS {
		t.Errorf("local dashboard runs at %d fps, want the cap %d", got, dashboardFPS)
	}
	if !local.opts.ASCII {
		t.Error("local dashboard: the settings' ascii is lost")
	}

	settings, err := loadDashboardSettings()
	if err != nil {
		t.Fatal(err)
	}
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.TrueColor)
	r.SetHasDarkBackground(true)
	sess := daemonpkg.DashboardSession{Context: context.Background(), Renderer: r, Width: 100, Height: 30, ReadOnly: true, Term: "xterm-256color"}
	opts, prog := settings.sessionOptions(sess)
	if got := programFPS(t, prog); got != dashboardFPS {
		t.Errorf("SSH dashboard runs at %d fps, want the cap %d", got, dashboardFPS)
	}
	if !opts.ASCII || opts.Renderer != r || r.ColorProfile() != termenv.ANSI256 || r.HasDarkBackground() {
		t.Errorf("SSH dashboard lacks the settings: ascii %v, profile %v, dark %v", opts.ASCII, r.ColorProfile(), r.HasDarkBackground())
	}
	if !opts.ReadOnly || opts.Width != 100 || opts.Height != 30 {
		t.Errorf("SSH dashboard lost the session: %+v", opts)
	}
	// the function the daemon is given returns those program options
	m, prog := settings.sshDashboard(nil, sess)
	if m == nil || programFPS(t, prog) != dashboardFPS {
		t.Error("sshDashboard does not pass the frame-rate cap")
	}
	// the Linux console gets line characters over SSH as well as locally
	if o, _ := (dashboardSettings{}).sessionOptions(daemonpkg.DashboardSession{Renderer: lipgloss.NewRenderer(io.Discard), Term: "linux"}); !o.ASCII {
		t.Error("TERM=linux over SSH: no ASCII charts")
	}
}
