// Package doctor checks casebook's dependencies one by one and says, for each, what
// works and what to fix: the database, the blob directory, the mailboxes, the SMTP
// server, the chat platforms and the clock.
//
// Every check only looks: it logs in and lists, it never sends a mail, posts a message
// or changes a mailbox. The blob check writes and removes one temporary file.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Status is how a check came out.
type Status string

// The statuses. Only Fail makes `casebook doctor` exit non-zero.
const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "FAIL"
)

// Check is one dependency to look at. Run returns what works, or an error that says
// what to fix; an error made by Warning is reported but does not fail the run.
type Check struct {
	Name string
	Run  func(ctx context.Context) (string, error)
}

// Result is one line of the report.
type Result struct {
	Name   string `json:"check"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
}

// warning marks a finding worth knowing that does not stop casebook working.
type warning struct{ msg string }

func (w *warning) Error() string { return w.msg }

// Warning returns an error that Run reports as a warning.
func Warning(format string, args ...any) error {
	return &warning{msg: fmt.Sprintf(format, args...)}
}

// Run runs every check at once, each bounded by timeout, and returns the results in
// the order of checks.
func Run(ctx context.Context, checks []Check, timeout time.Duration) []Result {
	res := make([]Result, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			detail, err := c.Run(cctx)
			r := Result{Name: c.Name, Status: OK, Detail: detail}
			var w *warning
			switch {
			case errors.As(err, &w):
				r.Status, r.Detail = Warn, w.msg
			case err != nil && cctx.Err() != nil && ctx.Err() == nil:
				r.Status, r.Detail = Fail, fmt.Sprintf("no answer within %s: is the address right and reachable from here? (%v)", timeout, err)
			case err != nil:
				r.Status, r.Detail = Fail, err.Error()
			}
			res[i] = r
		})
	}
	wg.Wait()
	return res
}

// Failed reports whether any result is a failure.
func Failed(rs []Result) bool {
	for _, r := range rs {
		if r.Status == Fail {
			return true
		}
	}
	return false
}

// Print writes one aligned line per result.
func Print(w io.Writer, rs []Result) error {
	width := 0
	for _, r := range rs {
		width = max(width, len(r.Name))
	}
	for _, r := range rs {
		detail := strings.Join(strings.Fields(r.Detail), " ")
		if _, err := fmt.Fprintf(w, "%-4s  %-*s  %s\n", r.Status, width, r.Name, detail); err != nil {
			return err
		}
	}
	return nil
}
