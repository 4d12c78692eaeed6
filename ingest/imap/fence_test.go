package imap_test

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/casebookhq/casebook/ingest"
	cbimap "github.com/casebookhq/casebook/ingest/imap"
)

// window is a span of time one poller may have worked the mailbox.
type window struct {
	who        string
	start, end time.Time
}

// journal records when each poller held the mailbox and when it handled mail.
type journal struct {
	mu      sync.Mutex
	held    []window
	handled []window
}

func (j *journal) handle(w window) {
	j.mu.Lock()
	j.handled = append(j.handled, w)
	j.mu.Unlock()
}

// recordingLocker notes the span in which its poller may work: from the end of the
// fence after taking the lock to the return of the work.
type recordingLocker struct {
	cbimap.Locker
	who string
	j   *journal
}

func (l recordingLocker) WithLock(ctx context.Context, name string, interval time.Duration, fn func(context.Context) error) (bool, error) {
	return l.Locker.WithLock(ctx, name, interval, func(ctx context.Context) error {
		// A span still open when the test looks ends in the far future.
		l.j.mu.Lock()
		i := len(l.j.held)
		l.j.held = append(l.j.held, window{l.who, time.Now().Add(cbimap.LockFence), time.Now().Add(time.Hour)})
		l.j.mu.Unlock()
		err := fn(ctx)
		l.j.mu.Lock()
		l.j.held[i].end = time.Now()
		l.j.mu.Unlock()
		return err
	})
}

// recordingProcessor notes when its poller handled a message.
type recordingProcessor struct {
	ingest.Processor
	who string
	j   *journal
}

func (p recordingProcessor) Process(ctx context.Context, loc ingest.Location, raw io.ReadSeeker) (ingest.Result, error) {
	start := time.Now()
	res, err := p.Processor.Process(ctx, loc, raw)
	p.j.handle(window{p.who, start, time.Now()})
	return res, err
}

// TestNoTwoPollersOverlap kills the mailbox lock's session again and again while two
// pollers share a mailbox that keeps receiving mail. The holder must stop within the
// fence, so the spans in which the two may work never overlap, every message is
// handled inside its poller's span, and every mail lands once.
func TestNoTwoPollersOverlap(t *testing.T) {
	e := newEnv(t)
	s := startDovecot(t)
	mb, err := cbimap.ParseURL(s.url("INBOX"))
	if err != nil {
		t.Fatal(err)
	}
	j := &journal{}
	for _, who := range []string{"a", "b"} {
		e.startLocked(t, mb, recordingProcessor{e.proc, who, j}, recordingLocker{e.st, who, j})
	}
	const kills, perRound = 4, 10
	total := 0
	for round := range kills + 1 {
		for i := range perRound {
			s.append(t, "INBOX", e.reply(fmt.Sprint("r", round, "m", i), 0))
		}
		total += perRound
		waitFolders(t, s, map[string]uint32{"INBOX": 0, "Casebook/Processed": uint32(total)})
		if round == kills {
			break
		}
		var killed int
		if err := e.st.DB().Get(&killed, `SELECT count(pg_terminate_backend(pid)) FROM pg_locks
			WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`); err != nil {
			t.Fatal(err)
		}
		if killed != 1 {
			t.Fatalf("round %d: lock sessions ended = %d, want 1", round, killed)
		}
	}
	if u, _ := e.updates(t); u != total {
		t.Errorf("updates = %d, want %d", u, total)
	}

	j.mu.Lock()
	defer j.mu.Unlock()
	held := slices.Clone(j.held)
	slices.SortFunc(held, func(a, b window) int { return a.start.Compare(b.start) })
	if len(held) < kills {
		t.Fatalf("%d spans ended, want at least %d (one per kill)", len(held), kills)
	}
	for i := 1; i < len(held); i++ {
		prev, next := held[i-1], held[i]
		if next.start.Before(prev.end) {
			t.Errorf("%s worked the mailbox from %s while %s did until %s: overlap %v",
				next.who, next.start.Format(time.StampMicro), prev.who, prev.end.Format(time.StampMicro), prev.end.Sub(next.start))
		}
	}
	for _, h := range j.handled {
		inside := slices.ContainsFunc(held, func(w window) bool {
			return w.who == h.who && !h.start.Before(w.start) && !h.end.After(w.end)
		})
		if !inside {
			t.Errorf("%s handled a message at %s outside every span it held the lock", h.who, h.start.Format(time.StampMicro))
		}
	}
}
