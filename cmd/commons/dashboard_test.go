package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"
)

// crashModel panics on the key x, in Update or in the command it returns.
type crashModel struct{ inCmd bool }

func (crashModel) Init() tea.Cmd { return nil }
func (m crashModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if k, ok := msg.(tea.KeyMsg); ok {
		switch k.String() {
		case "x":
			if m.inCmd {
				return m, func() tea.Msg { panic("boom in a command") }
			}
			panic("boom in Update")
		case "q":
			return m, tea.Quit
		}
	}
	return m, nil
}
func (crashModel) View() string { return "dashboard\n" }

// TestDashboardPanicExitsOne: a panic in the dashboard ends the program
// with exit code 1 and one line that says so; quitting, or the context
// ending (SIGINT/SIGTERM), is still a clean exit.
func TestDashboardPanicExitsOne(t *testing.T) {
	tests := []struct {
		name   string
		m      crashModel
		keys   string
		cancel bool
		code   int
	}{
		{"panic in Update", crashModel{}, "x", false, exitFailure},
		{"panic in a command", crashModel{inCmd: true}, "x", false, exitFailure},
		{"quit", crashModel{}, "q", false, exitOK},
		{"context ended", crashModel{}, "", true, exitOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			in, w := io.Pipe()
			defer w.Close()
			p := tea.NewProgram(tt.m, tea.WithContext(ctx), tea.WithInput(in), tea.WithOutput(&bytes.Buffer{}), tea.WithoutSignalHandler())
			go func() {
				if tt.cancel {
					cancel()
					return
				}
				_, _ = w.Write([]byte(tt.keys))
			}()
			err := runProgram(p)
			code := exitOK
			var ee *exitError
			if errors.As(err, &ee) {
				code = ee.code
			} else if err != nil {
				code = -1
			}
			if code != tt.code {
				t.Fatalf("exit code %d (%v), want %d", code, err, tt.code)
			}
			if tt.code == exitFailure {
				if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, "dashboard crashed") {
					t.Errorf("message %q is not one line saying the dashboard crashed", msg)
				}
			}
		})
	}
}
