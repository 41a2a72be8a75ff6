package main

import (
	"errors"
	"fmt"
	"strings"
)

func joinErrors(errs []error) error { return errors.Join(errs...) }

// flatten splits joined errors into their lines.
func flatten(err error) []string {
	if e, ok := err.(*exitError); ok && e.err != nil {
		return flatten(e.err)
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []string{err.Error()}
}

// formatError renders err for the terminal: one problem per line.
func formatError(err error) string {
	lines := flatten(err)
	if len(lines) == 1 {
		return lines[0]
	}
	return fmt.Sprintf("%d problems:\n  %s", len(lines), strings.Join(lines, "\n  "))
}
