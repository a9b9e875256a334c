// Package bench measures the gateway's overhead against direct connections.
package bench

import (
	"context"
	"errors"
	"io"
)

// Options configure a run.
type Options struct {
	Calls        int
	Sessions     int
	IdleSessions int
}

// Report is a run's result.
type Report struct{}

// Run is being written.
func Run(ctx context.Context, o *Options) (*Report, error) {
	return nil, errors.New("bench: not implemented yet")
}

// Print writes the report for people.
func (r *Report) Print(w io.Writer) {}
