package imap_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/ingest"
	cbimap "github.com/casebookhq/casebook/ingest/imap"
)

// appendAt appends raw to the mailbox with the given arrival date.
func (m *memServer) appendAt(t testing.TB, mailbox string, raw []byte, at time.Time) {
	t.Helper()
	c := m.dial(t)
	defer c.Close()
	cmd := c.Append(mailbox, int64(len(raw)), &imap.AppendOptions{Time: at})
	if _, err := io.Copy(cmd, bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
}

// interrupting cancels the backfill after n messages handled, as Ctrl-C would.
type interrupting struct {
	ingest.Processor
	n      int64
	seen   atomic.Int64
	cancel context.CancelFunc
}

func (p *interrupting) Process(ctx context.Context, loc ingest.Location, raw io.ReadSeeker) (ingest.Result, error) {
	res, err := p.Processor.Process(ctx, loc, raw)
	if p.seen.Add(1) == p.n {
		p.cancel()
	}
	return res, err
}

// TestBackfill works through the mail since a date, is interrupted, and is run again:
// every message since the date ends up handled once, older mail is left alone, the
// mailbox is not changed, and the poller's position is not touched.
func TestBackfill(t *testing.T) {
	e := newEnv(t)
	s := startMem(t, withMove)
	old := time.Date(2025, 12, 1, 9, 0, 0, 0, time.UTC)
	recent := time.Date(2026, 1, 10, 9, 0, 0, 0, time.UTC)
	s.appendAt(t, "INBOX", e.reply("old1", 1<<10), old)
	s.appendAt(t, "INBOX", e.reply("old2", 0), old)
	for _, id := range []string{"new1", "new2", "new3"} {
		s.appendAt(t, "INBOX", e.reply(id, 2<<10), recent)
	}
	s.appendAt(t, "INBOX", mailFrom("eve@elsewhere.example", "Re: ["+e.ref+"] results", "stranger", 0), recent)
	mb, err := cbimap.ParseURL(s.url("INBOX"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := cbimap.BackfillConfig{Mailbox: mb, Since: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Store: e.st,
		SpoolDir: t.TempDir(), Logger: testLogger(t)}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg.Processor = &interrupting{Processor: e.proc, n: 2, cancel: cancel}
	var reports []cbimap.BackfillProgress
	prog, err := cbimap.Backfill(ctx, cfg, func(p cbimap.BackfillProgress) { reports = append(reports, p) })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted backfill: err = %v", err)
	}
	if prog.Total != 4 || prog.Done != 2 || len(reports) != 3 {
		t.Errorf("interrupted backfill: %+v after %d reports", prog, len(reports))
	}

	cfg.Processor = e.proc
	prog, err = cbimap.Backfill(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := cbimap.BackfillProgress{Total: 4, Done: 4, Skipped: 2, Processed: 1, Quarantined: 1}
	if prog != want {
		t.Errorf("rerun: %+v, want %+v", prog, want)
	}
	if u, files := e.updates(t); u != 3 || files != 3 {
		t.Errorf("case has %d updates and %d files, want 3 and 3", u, files)
	}
	if n := e.quarantined(t, "quarantined"); n != 1 {
		t.Errorf("%d quarantined, want 1", n)
	}
	if n := s.count(t, "INBOX"); n != 6 {
		t.Errorf("INBOX holds %d messages after the backfill, want all 6", n)
	}
	if _, err := e.st.Checkpoint(context.Background(), ingest.CheckpointChannel, ingest.CheckpointKey(ingest.Location{Mailbox: mb.String(), UIDValidity: 1})); !errors.Is(err, casebook.ErrNotFound) {
		t.Errorf("the poller's checkpoint: %v, want none", err)
	}

	// A third run finds everything done.
	prog, err = cbimap.Backfill(context.Background(), cfg, nil)
	if err != nil || prog.Skipped != 4 || prog.Done != 4 {
		t.Errorf("third run: %+v, %v", prog, err)
	}
}
