package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progress reports a long run's advance: a bar redrawn in place on a terminal, or a
// plain line every interval otherwise (a log file, a pipe, journald), which a
// redrawn bar would fill with carriage returns.
type progress struct {
	w        io.Writer
	terminal bool
	label    string
	total    int
	start    time.Time
	// interval is how often a plain line is written; lastLine when the last was.
	interval time.Duration
	lastLine time.Time
	now      func() time.Time
	// unit and units name what is counted, as in "12.0 msg/s" and "3/9 messages".
	unit, units string
}

func newProgress(w io.Writer, terminal bool, label string, total int, now func() time.Time) *progress {
	t := now()
	return &progress{w: w, terminal: terminal, label: label, total: total, start: t, lastLine: t, interval: 10 * time.Second, now: now, unit: "msg", units: "messages"}
}

// update shows done of total, with what happened so far in detail.
func (p *progress) update(done int, detail string) {
	now := p.now()
	if !p.terminal && now.Sub(p.lastLine) < p.interval && done < p.total {
		return
	}
	p.lastLine = now
	line := p.line(done, detail, now)
	if p.terminal {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		return
	}
	fmt.Fprintln(p.w, line)
}

// finish ends the bar's line on a terminal.
func (p *progress) finish() {
	if p.terminal {
		fmt.Fprintln(p.w)
	}
}

func (p *progress) line(done int, detail string, now time.Time) string {
	elapsed := now.Sub(p.start)
	rate := 0.0
	if elapsed > 0 {
		rate = float64(done) / elapsed.Seconds()
	}
	eta := "?"
	if rate > 0 && p.total >= done {
		eta = time.Duration(float64(p.total-done) / rate * float64(time.Second)).Round(time.Second).String()
	}
	count := fmt.Sprintf("%d/%d", done, p.total)
	if p.terminal {
		const width = 30
		fill := width
		if p.total > 0 {
			fill = done * width / p.total
		}
		bar := strings.Repeat("=", fill) + strings.Repeat(" ", width-fill)
		return strings.TrimSpace(fmt.Sprintf("%s [%s] %s  %.1f %s/s  ETA %s  %s", p.label, bar, count, rate, p.unit, eta, detail))
	}
	line := fmt.Sprintf("%s: %s %s, %.1f %s/s, ETA %s", p.label, count, p.units, rate, p.unit, eta)
	if detail != "" {
		line += ", " + detail
	}
	return line
}
