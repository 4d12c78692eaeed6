package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// clock is a fake time source that advances by step at each reading after the first.
type clock struct {
	t    time.Time
	step time.Duration
}

func (c *clock) now() time.Time { t := c.t; c.t = c.t.Add(c.step); return t }

func TestProgressPlainLines(t *testing.T) {
	var b bytes.Buffer
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), step: 4 * time.Second}
	p := newProgress(&b, false, "backfill INBOX", 10, c.now)
	for done := 1; done <= 10; done++ {
		p.update(done, "")
	}
	p.finish()
	// A line every 10 s of the fake clock (4 s a message), and always the last one.
	want := "backfill INBOX: 3/10 messages, 0.2 msg/s, ETA 28s\n" +
		"backfill INBOX: 6/10 messages, 0.2 msg/s, ETA 16s\n" +
		"backfill INBOX: 9/10 messages, 0.2 msg/s, ETA 4s\n" +
		"backfill INBOX: 10/10 messages, 0.2 msg/s, ETA 0s\n"
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestProgressBar(t *testing.T) {
	var b bytes.Buffer
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), step: time.Second}
	p := newProgress(&b, true, "backfill", 4, c.now)
	p.update(2, "2 added")
	p.finish()
	want := "\r\033[Kbackfill [===============               ] 2/4  2.0 msg/s  ETA 1s  2 added\n"
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
