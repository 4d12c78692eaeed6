package outbox

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/outbox/smtptest"
	"github.com/casebookhq/casebook/casebook/postgres"
)

// freezable stands for a worker's process: once frozen, as by kill -9, it renews
// nothing more.
type freezable struct {
	*postgres.Store
	frozen atomic.Bool
}

func (s *freezable) ExtendOutboxLease(ctx context.Context, claims []casebook.OutboxEntry, until time.Time) ([]int64, error) {
	if s.frozen.Load() {
		return nil, errors.New("process killed")
	}
	return s.Store.ExtendOutboxLease(ctx, claims, until)
}

// TestLeaseOutlivesSlowSendNotDeath has worker A stall inside a send for three leases
// while worker B keeps claiming: the heartbeat keeps the row A's, so B sends nothing.
// Then A dies mid-send: B must send the row within a lease and a poll of the death,
// and the row is sent once.
func TestLeaseOutlivesSlowSendNotDeath(t *testing.T) {
	f := newFixture(t)
	const lease = 3 * time.Second
	real := func(o *Options) {
		o.Now = time.Now
		o.Lease = lease
		o.Poll = 100 * time.Millisecond
	}
	a := &freezable{Store: f.st}
	wa := f.worker(t, a, real)
	wb := f.worker(t, nil, real)
	m := f.caseEmail(t, casebook.CaseOpened, "")

	// A's session stalls at the end of DATA until released, then is refused, so the
	// only mail that arrives is B's.
	release := make(chan struct{})
	var once sync.Once
	stalled := make(chan struct{})
	f.srv.SetReply(func(smtptest.Message) error {
		first := false
		once.Do(func() { first = true })
		if !first {
			return nil
		}
		close(stalled)
		<-release
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "aborted"}
	})
	aDone := make(chan struct{})
	go func() {
		defer close(aDone)
		if _, err := wa.sendDue(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	defer func() { close(release); <-aDone }()
	<-stalled

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go wb.Run(ctx)
	time.Sleep(3 * lease)
	if got := len(f.srv.Messages()); got != 0 {
		t.Fatalf("%d mails sent while A still held the row, want 0", got)
	}

	died := time.Now()
	a.frozen.Store(true)
	select {
	case <-f.srv.Arrived():
	case <-time.After(3 * lease):
		t.Fatal("the dead worker's row was not sent within three leases")
	}
	took := time.Since(died)
	t.Logf("sent %v after the worker died (lease %v)", took, lease)
	// The lease runs from A's last renewal, at most a third of a lease before the death.
	if took > lease+time.Second {
		t.Errorf("sent %v after the death, want within the lease %v and a poll", took, lease)
	}
	if got := len(f.srv.Messages()); got != 1 {
		t.Errorf("%d mails, want 1", got)
	}
	// B marks the row just after the server's 250.
	deadline := time.Now().Add(5 * time.Second)
	for f.entry(t, m.MessageID).Status != casebook.OutboxSent && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if e := f.entry(t, m.MessageID); e.Status != casebook.OutboxSent || e.Attempts != 2 {
		t.Errorf("row %s after %d attempts, want sent after 2", e.Status, e.Attempts)
	}
}

// TestExtendOutboxLease checks the claim token: a renewal keeps only rows still
// pending under the same claim, and never shortens a deferral.
func TestExtendOutboxLease(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	for range 3 {
		f.caseEmail(t, casebook.CaseOpened, "")
	}
	now := f.clock.Now()
	rows, err := f.st.ClaimOutbox(ctx, now, time.Minute, 10, 0)
	if err != nil || len(rows) != 3 {
		t.Fatalf("claim: %d rows, %v", len(rows), err)
	}
	sent, deferred, stale := rows[0], rows[1], rows[2]
	if err := f.st.MarkOutboxSent(ctx, sent.ID, now); err != nil {
		t.Fatal(err)
	}
	if err := f.st.RetryOutbox(ctx, deferred.ID, now.Add(time.Hour), "451"); err != nil {
		t.Fatal(err)
	}
	// The stale claim ran out and another worker claimed the row again.
	again, err := f.st.ClaimOutbox(ctx, now.Add(2*time.Minute), time.Minute, 10, 0)
	if err != nil || len(again) != 1 || again[0].ID != stale.ID {
		t.Fatalf("second claim: %+v, %v", again, err)
	}
	held, err := f.st.ExtendOutboxLease(ctx, rows, now.Add(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(held) != 0 {
		t.Errorf("old claims still held: %v, want none", held)
	}
	held, err = f.st.ExtendOutboxLease(ctx, again, now.Add(4*time.Minute))
	if err != nil || len(held) != 1 || held[0] != stale.ID {
		t.Errorf("renewal of the current claim: %v, %v; want [%d]", held, err, stale.ID)
	}
}

// TestStoppingWorkerHandsBackItsRows stops worker A while the first mail of its batch
// is at the server: the send under way finishes, and the rows A had not started are
// handed back uncounted, so worker B sends them at once instead of after the lease.
func TestStoppingWorkerHandsBackItsRows(t *testing.T) {
	f := newFixture(t)
	real := func(o *Options) { o.Now = time.Now }
	wa := f.worker(t, nil, real)
	wb := f.worker(t, nil, real)
	mails := []casebook.OutboxMail{
		f.caseEmail(t, casebook.CaseOpened, ""),
		f.caseEmail(t, casebook.CaseReply, "first"),
		f.caseEmail(t, casebook.CaseReply, "second"),
	}
	release := make(chan struct{})
	stalled := make(chan struct{})
	var once sync.Once
	f.srv.SetReply(func(smtptest.Message) error {
		once.Do(func() {
			close(stalled)
			<-release
		})
		return nil
	})
	ctx, stop := context.WithCancel(t.Context())
	aDone := make(chan int)
	go func() {
		n, err := wa.sendDue(ctx)
		if err != nil {
			t.Error(err)
		}
		aDone <- n
	}()
	<-stalled
	stop()
	close(release)
	if n := <-aDone; n != len(mails) {
		t.Fatalf("A claimed %d rows, want %d", n, len(mails))
	}
	if e := f.entry(t, mails[0].MessageID); e.Status != casebook.OutboxSent {
		t.Errorf("the mail under way when A stopped is %s, want sent", e.Status)
	}
	for _, m := range mails[1:] {
		if e := f.entry(t, m.MessageID); e.Status != casebook.OutboxPending || e.Attempts != 0 || e.NextAttemptAt.After(time.Now()) {
			t.Errorf("row A did not start: %s after %d attempts, due %v; want pending, uncounted, due now", e.Status, e.Attempts, e.NextAttemptAt)
		}
	}
	if n, err := wb.sendDue(t.Context()); err != nil || n != len(mails)-1 {
		t.Fatalf("B claimed %d rows (%v), want the %d handed back", n, err, len(mails)-1)
	}
	for _, m := range mails {
		if e := f.entry(t, m.MessageID); e.Status != casebook.OutboxSent || e.Attempts != 1 {
			t.Errorf("%s after %d attempts, want sent after 1", e.Status, e.Attempts)
		}
	}
	if got := len(f.srv.Messages()); got != len(mails) {
		t.Errorf("%d mails arrived, want %d", got, len(mails))
	}
}
