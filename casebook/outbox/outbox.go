// Package outbox sends the mails casebook queues in its outbox table: the owner's
// notification of new files, case emails to requesters, and temporary passwords.
//
// Rows are written in the transaction of the change that caused them; the worker
// claims due rows with FOR UPDATE SKIP LOCKED (so several instances may run it),
// sends each over SMTP with the row's stable Message-ID, and records the outcome.
// Delivery is at least once: a crash between the server's acceptance and the mark
// leaves the row to be sent again, once, with the same Message-ID, which receiving
// systems and clients recognise as the same mail.
package outbox

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/mail"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/casebookhq/casebook/casebook"
)

// Store is what the worker needs from storage.
type Store interface {
	ClaimOutbox(ctx context.Context, now time.Time, lease time.Duration, limit, perHour int) ([]casebook.OutboxEntry, error)
	// ExtendOutboxLease moves the lease of claimed rows to until and returns the ids of
	// those still held by that claim (pending, attempts unchanged since).
	ExtendOutboxLease(ctx context.Context, claims []casebook.OutboxEntry, until time.Time) ([]int64, error)
	// ReleaseOutboxClaims makes claimed rows not started due again at now, uncounted,
	// when still held by that claim; it returns how many.
	ReleaseOutboxClaims(ctx context.Context, claims []casebook.OutboxEntry, now time.Time) (int, error)
	MarkOutboxSent(ctx context.Context, id int64, now time.Time) error
	RetryOutbox(ctx context.Context, id int64, next time.Time, reason string) error
	FailOutbox(ctx context.Context, id int64, reason string) error
}

// Options configures a Worker. Zero values take the defaults in brackets.
type Options struct {
	// From is the sender, e.g. "Acme Support <support@acme.example>".
	From string
	// ReplyAddress is the mailbox replies go to; case emails carry a signed
	// plus-address of it in Reply-To (support+TOKEN@…).
	ReplyAddress string
	Signer       *casebook.TokenSigner
	// BaseURL is where the web page is, for links to cases.
	BaseURL string
	// PerHour caps the mails about one case to one recipient per hour [20]; < 0: no cap.
	PerHour int
	// MaxAttempts is how many tries a mail gets before it fails for good [15].
	MaxAttempts int
	// BaseDelay is the wait after the first failure, doubled each time [30s] up to
	// MaxDelay [1h].
	BaseDelay, MaxDelay time.Duration
	// Lease is how long a claimed row is left alone before another worker may take it
	// [30s]. The worker renews it every third of that while it holds rows, so a long
	// send keeps its rows and a worker that dies hands them on within Lease.
	Lease time.Duration
	// SendTimeout bounds one mail's SMTP exchange [1m].
	SendTimeout time.Duration
	// Batch is how many rows one claim takes [50].
	Batch int
	// Poll is the wait between claims when nothing was due [2s].
	Poll time.Duration
	// Templates replaces the embedded mail templates.
	Templates fs.FS
	// Now replaces the clock.
	Now    func() time.Time
	Logger *slog.Logger
}

// Worker sends queued mail.
type Worker struct {
	store  Store
	dialer *Dialer
	comp   *composer
	opt    Options
	log    *slog.Logger
}

// New returns a worker sending through dialer. It parses the templates now, so that a
// broken template stops the start rather than a mail.
func New(store Store, dialer *Dialer, opt Options) (*Worker, error) {
	from, err := mail.ParseAddress(opt.From)
	if err != nil {
		return nil, fmt.Errorf("outbox: mail from %q: %w", opt.From, err)
	}
	from.Name = headerText(from.Name)
	if opt.ReplyAddress != "" {
		if a, err := mail.ParseAddress(opt.ReplyAddress); err != nil || a.Name != "" || a.Address != opt.ReplyAddress {
			return nil, fmt.Errorf("outbox: reply address %q must be a bare address like support@example.com", opt.ReplyAddress)
		}
	}
	if opt.PerHour == 0 {
		opt.PerHour = 20
	}
	if opt.MaxAttempts <= 0 {
		opt.MaxAttempts = 15
	}
	if opt.BaseDelay <= 0 {
		opt.BaseDelay = 30 * time.Second
	}
	if opt.MaxDelay <= 0 {
		opt.MaxDelay = time.Hour
	}
	if opt.SendTimeout <= 0 {
		opt.SendTimeout = time.Minute
	}
	if opt.Lease <= 0 {
		opt.Lease = DefaultLease
	}
	if opt.Lease < minLease {
		return nil, fmt.Errorf("outbox: lease %s is shorter than %s", opt.Lease, minLease)
	}
	if opt.Batch <= 0 {
		opt.Batch = 50
	}
	if opt.Poll <= 0 {
		opt.Poll = 2 * time.Second
	}
	if opt.Templates == nil {
		opt.Templates = defaultTemplates()
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	d := *dialer
	if d.LocalName == "" {
		// RFC 5321 4.1.1.1: EHLO names the client's domain; the sender's is the best we know.
		d.LocalName = from.Address[strings.LastIndexByte(from.Address, '@')+1:]
	}
	comp, err := newComposer(opt.Templates, from, opt.ReplyAddress, opt.Signer, opt.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	return &Worker{store: store, dialer: &d, comp: comp, opt: opt, log: opt.Logger}, nil
}

// Run sends due mail until ctx ends.
func (w *Worker) Run(ctx context.Context) error {
	w.log.InfoContext(ctx, "outbox worker started", "smtp", w.dialer.String())
	for {
		n, err := w.sendDue(ctx)
		if err != nil && ctx.Err() == nil {
			w.log.ErrorContext(ctx, "outbox claim failed", slog.Any("error", err))
		}
		if n == w.opt.Batch && err == nil {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(w.opt.Poll):
		}
	}
}

// sendDue claims one batch of due rows and sends them over one SMTP session. It
// returns how many rows it claimed.
func (w *Worker) sendDue(ctx context.Context) (int, error) {
	claimedAt := w.opt.Now()
	rows, err := w.store.ClaimOutbox(ctx, claimedAt, w.opt.Lease, w.opt.Batch, w.opt.PerHour)
	if err != nil {
		return 0, err
	}
	l := newLease(rows, claimedAt.Add(w.opt.Lease))
	// The heartbeat outlives a shutdown's start: the send under way keeps its rows.
	hctx, stopHeartbeat := context.WithCancel(context.WithoutCancel(ctx))
	var heartbeat sync.WaitGroup
	heartbeat.Go(func() { w.heartbeat(hctx, l) })
	defer heartbeat.Wait()
	defer stopHeartbeat()
	var c *conn
	var connErr error
	defer func() {
		if c != nil && !c.broken {
			c.close()
		}
	}()
	var left []casebook.OutboxEntry
	for _, e := range rows {
		if e.Status == casebook.OutboxSuppressed {
			w.log.WarnContext(ctx, "mail suppressed", "outbox_id", e.ID, "kind", e.Kind, "case", caseRef(e), "reason", e.LastError)
			continue
		}
		switch {
		case ctx.Err() != nil:
			// A stopping worker hands its rows back below, for another to send now.
			left = append(left, e)
		case l.mayStart(e.ID, w.opt.Now(), w.opt.Lease/3):
			w.send(ctx, e, &c, &connErr)
		}
		// A row whose lease could not be renewed may have passed to another worker:
		// it is theirs.
		l.done(e.ID)
	}
	w.handBack(ctx, left)
	return len(rows), nil
}

// handBack releases the claim on rows a stopping worker did not start. Should that
// fail, the rows come due when their lease ends.
func (w *Worker) handBack(ctx context.Context, rows []casebook.OutboxEntry) {
	if len(rows) == 0 {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	n, err := w.store.ReleaseOutboxClaims(rctx, rows, w.opt.Now())
	if err != nil {
		w.log.WarnContext(ctx, "stopping: outbox rows not handed back; they come due when their lease ends",
			"rows", len(rows), "lease", w.opt.Lease, slog.Any("error", err))
		return
	}
	w.log.InfoContext(ctx, "stopping: outbox rows handed back", "rows", n)
}

// send sends one claimed row over *c, dialling it first when there is none; a failed
// dial is kept in *connErr and speaks for the rest of the batch.
func (w *Worker) send(ctx context.Context, e casebook.OutboxEntry, c **conn, connErr *error) {
	// Marks must land even when shutdown has begun: a sent mail left unmarked is a
	// duplicate later.
	markCtx := context.WithoutCancel(ctx)
	m, err := w.comp.compose(e, w.opt.Now())
	if err != nil {
		w.fail(markCtx, e, err.Error())
		return
	}
	if *c == nil || (*c).broken {
		if *connErr == nil {
			*c, *connErr = w.dialer.Dial(ctx)
		}
		// One failed connection speaks for the whole batch: no dial per row.
		if *connErr != nil {
			w.retry(markCtx, e, *connErr)
			return
		}
	}
	sctx, cancel := context.WithTimeout(markCtx, w.opt.SendTimeout)
	err = (*c).send(sctx, m.from, m.to, m.msg)
	cancel()
	var se *smtp.SMTPError
	var sess *sessionError
	switch {
	case err == nil:
		if err := w.store.MarkOutboxSent(markCtx, e.ID, w.opt.Now()); err != nil {
			// The mail went; the row will be sent once more after its lease, with
			// the same Message-ID.
			w.log.ErrorContext(ctx, "mail sent but not marked", "outbox_id", e.ID, "message_id", e.MessageID, slog.Any("error", err))
			return
		}
		w.log.InfoContext(ctx, "mail sent", "outbox_id", e.ID, "kind", e.Kind, "case", caseRef(e), "message_id", e.MessageID, "attempt", e.Attempts)
	case errors.As(err, &se) && se.Code >= 500 && se.Code < 600 && !errors.As(err, &sess):
		w.fail(markCtx, e, "smtp "+smtpReply(se))
	default:
		w.retry(markCtx, e, err)
	}
}

// retry schedules another attempt with capped exponential backoff, or gives up after
// MaxAttempts.
func (w *Worker) retry(ctx context.Context, e casebook.OutboxEntry, cause error) {
	reason := cause.Error()
	var se *smtp.SMTPError
	if errors.As(cause, &se) {
		reason = "smtp " + smtpReply(se)
		var sess *sessionError
		if errors.As(cause, &sess) {
			reason = sess.stage + ": " + reason
		}
	}
	if e.Attempts >= w.opt.MaxAttempts {
		w.fail(ctx, e, fmt.Sprintf("gave up after %d attempts: %s", e.Attempts, reason))
		return
	}
	next := w.opt.Now().Add(w.backoff(e.Attempts))
	if err := w.store.RetryOutbox(ctx, e.ID, next, reason); err != nil {
		w.log.ErrorContext(ctx, "cannot schedule mail retry", "outbox_id", e.ID, slog.Any("error", err))
		return
	}
	w.log.WarnContext(ctx, "mail deferred", "outbox_id", e.ID, "kind", e.Kind, "case", caseRef(e),
		"attempt", e.Attempts, "next_attempt_at", next, "reason", reason)
}

// backoff is BaseDelay·2^(attempt-1), capped at MaxDelay, less up to a fifth at random
// so that rows deferred together by an outage do not all come due in the same instant.
func (w *Worker) backoff(attempt int) time.Duration {
	d := w.opt.BaseDelay
	for i := 1; i < attempt && d < w.opt.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, w.opt.MaxDelay)
	return d - rand.N(d/5+1)
}

func (w *Worker) fail(ctx context.Context, e casebook.OutboxEntry, reason string) {
	if err := w.store.FailOutbox(ctx, e.ID, reason); err != nil {
		w.log.ErrorContext(ctx, "cannot mark mail failed", "outbox_id", e.ID, slog.Any("error", err))
		return
	}
	w.log.ErrorContext(ctx, "mail failed", "outbox_id", e.ID, "kind", e.Kind, "case", caseRef(e), "attempt", e.Attempts, "reason", reason)
}

// caseRef names the case in logs as the row's data does, without the PHI of the rest.
func caseRef(e casebook.OutboxEntry) string {
	switch d := e.Data.(type) {
	case casebook.OwnerNotification:
		return d.Case
	case casebook.CaseEmail:
		return d.Case
	}
	return ""
}
