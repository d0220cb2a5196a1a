package dashconfig

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
)

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "dashboard.json")
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if c, err := LoadConfig(filepath.Join(dir, "missing.json")); err != nil || c != (Config{}) {
		t.Errorf("missing file: %+v, %v", c, err)
	}
	c, err := LoadConfig(write(`{"colour": "256", "background": "light", "ascii": true}`))
	if err != nil || c.Colour != "256" || c.Background != "light" || !c.ASCII {
		t.Fatalf("good file: %+v, %v", c, err)
	}
	r := lipgloss.NewRenderer(io.Discard)
	err = c.Apply(r)
	if err != nil || r.ColorProfile() != termenv.ANSI256 || r.HasDarkBackground() || !c.ASCII {
		t.Errorf("apply: profile %v dark %v ascii %v, %v", r.ColorProfile(), r.HasDarkBackground(), c.ASCII, err)
	}
	for _, bad := range []struct{ body, want string }{
		{`{"colour": "purple"}`, `colour "purple" is unknown`},
		{`{"background": "grey"}`, `background "grey" is unknown`},
		{`{"colour": `, "dashboard.json"},
		{strings.Repeat(" ", 70<<10), "larger than 64 KiB"},
	} {
		if _, err := LoadConfig(write(bad.body)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%.20q: error %v, want %q", bad.body, err, bad.want)
		}
	}
	r = lipgloss.NewRenderer(io.Discard)
	if err := (Config{Colour: "never"}).Apply(r); err != nil || r.ColorProfile() != termenv.Ascii {
		t.Errorf("never: %v %v", r.ColorProfile(), err)
	}
}

func TestConfigPathIsXDG(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", "/tmp/xdg-test")
	p, err := ConfigPath()
	if err != nil || p != "/tmp/xdg-test/commons/dashboard.json" {
		t.Errorf("ConfigPath = %q, %v", p, err)
	}
}

func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{`{}`, `{"colour": "256", "background": "light", "ascii": true}`, `{"colour": 5}`, `[`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseConfig(b)
		if err != nil {
			if c != (Config{}) {
				t.Fatalf("error %v with settings %+v", err, c)
			}
			return
		}
		// whatever parses applies without error
		if err := c.Apply(lipgloss.NewRenderer(io.Discard)); err != nil {
			t.Fatalf("parsed %+v does not apply: %v", c, err)
		}
	})
}
