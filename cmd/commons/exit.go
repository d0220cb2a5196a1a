package main

import "fmt"

// Exit codes, as documented in ../shared/design/CLI.md.
const (
	exitOK        = 0 // success
	exitFailure   = 1 // failure at run time
	exitUsage     = 2 // usage error
	exitNotFound  = 3 // unknown neighbour, pledge id, port
	exitIntegrity = 4 // integrity failure, rejected telegram
	exitTimeout   = 5 // --wait or --timeout ran out
)

// exitError carries an exit code up to main together with the one-line
// message printed on stderr. A nil err prints nothing (the command already
// said what went wrong).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// failf returns an exitError with code and a formatted message.
func failf(code int, format string, args ...any) error {
	return &exitError{code: code, err: fmt.Errorf(format, args...)}
}

// withCode wraps err with an exit code; nil stays nil.
func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}
