// Package dashconfig reads the dashboard's settings file (colour profile,
// background, ASCII charts) and applies it to a lipgloss renderer. It is
// kept out of the view package: the dashboard only receives the renderer
// and options that result, so a view never reads the disk.
package dashconfig

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
)

// Config is the dashboard's optional settings file, by default
// $XDG_CONFIG_HOME/commons/dashboard.json (see ConfigPath). Every field may
// be left out.
//
//	{"colour": "256", "background": "light", "ascii": true}
type Config struct {
	// Colour overrides the detected colour profile: "auto" (or ""),
	// "never", "16", "256" or "truecolor". SSH rarely forwards NO_COLOR or
	// COLORTERM, so this is the way to set it for a remote terminal.
	Colour string `json:"colour,omitempty"`
	// Background overrides the detected background: "auto" (or ""),
	// "dark" or "light".
	Background string `json:"background,omitempty"`
	// ASCII draws charts with line runes instead of braille.
	ASCII bool `json:"ascii,omitempty"`
}

// ConfigPath is where LoadConfig looks: $XDG_CONFIG_HOME/commons/dashboard.json,
// or ~/.config/commons/dashboard.json.
func ConfigPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the config folder: %w", err)
	}
	return filepath.Join(dir, "commons", "dashboard.json"), nil
}

// LoadConfig reads the settings file at path. A missing file is the zero
// Config and no error.
func LoadConfig(path string) (Config, error) {
	var c Config
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("read dashboard settings: %w", err)
	}
	c, err = parseConfig(b)
	if err != nil {
		return Config{}, fmt.Errorf("dashboard settings %s: %w", path, err)
	}
	return c, nil
}

// parseConfig reads the settings file's bytes.
func parseConfig(b []byte) (Config, error) {
	var c Config
	if len(b) > 64<<10 {
		return Config{}, errors.New("larger than 64 KiB; it should hold a few lines of JSON")
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return Config{}, fmt.Errorf("%w (expected e.g. {\"colour\": \"256\", \"background\": \"light\"})", err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate reports the first field with a value the dashboard does not know.
func (c Config) Validate() error {
	if _, _, err := colourProfile(c.Colour); err != nil {
		return err
	}
	switch c.Background {
	case "", "auto", "dark", "light":
		return nil
	}
	return fmt.Errorf("background %q is unknown; use auto, dark or light", c.Background)
}

func colourProfile(s string) (termenv.Profile, bool, error) {
	switch s {
	case "", "auto":
		return 0, false, nil
	case "never", "none", "no":
		return termenv.Ascii, true, nil
	case "16":
		return termenv.ANSI, true, nil
	case "256":
		return termenv.ANSI256, true, nil
	case "truecolor", "24bit":
		return termenv.TrueColor, true, nil
	}
	return 0, false, fmt.Errorf("colour %q is unknown; use auto, never, 16, 256 or truecolor", s)
}

// Apply sets the renderer's colour profile and background where the
// settings override them. ASCII is the caller's to pass on to the
// dashboard's options.
func (c Config) Apply(r *lipgloss.Renderer) error {
	p, set, err := colourProfile(c.Colour)
	if err != nil {
		return err
	}
	if set {
		r.SetColorProfile(p)
	}
	switch c.Background {
	case "dark":
		r.SetHasDarkBackground(true)
	case "light":
		r.SetHasDarkBackground(false)
	case "", "auto":
	default:
		return fmt.Errorf("background %q is unknown; use auto, dark or light", c.Background)
	}
	return nil
}
