// Package imap watches IMAP mailboxes and turns their mail into case updates: it
// fetches each new message (by UID, above a checkpoint kept in PostgreSQL), hands it to
// an ingest.Processor, and only after the processor committed files it away under
// Casebook/Processed, Casebook/Quarantine or Casebook/Ignored.
//
// One Poller works one mailbox. It waits with IDLE (or polls when the server lacks
// it), reconnects with capped exponential backoff, and holds a PostgreSQL advisory
// lock so that of several instances only one works a mailbox at a time.
package imap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/ingest"
)

// Store is what the poller reads from the database.
type Store interface {
	// Checkpoint returns a channel position, or an error wrapping casebook.ErrNotFound.
	Checkpoint(ctx context.Context, channel, key string) (string, error)
	// Ping tells a failing database from a failing message.
	Ping(ctx context.Context) error
}

// Quarantiner is implemented by a processor that can file a message in quarantine
// without handling it. The poller uses it for a poison message, so that a person sees
// it in the quarantine queue as well as in the Casebook/Quarantine folder.
type Quarantiner interface {
	Quarantine(ctx context.Context, loc ingest.Location, raw io.ReadSeeker, reason string) (ingest.Result, error)
}

// Observer is told about the poller's work, for metrics.
type Observer interface {
	// IMAPReconnect counts a new session after a lost one.
	IMAPReconnect(mailbox string)
	// IdleWakeToCommit is the time from the server's new-mail notice to a commit.
	IdleWakeToCommit(mailbox string, d time.Duration)
}

// Config configures a Poller. Zero durations take the defaults given.
type Config struct {
	Mailbox   Mailbox
	Processor ingest.Processor
	Store     Store
	// Locker holds the mailbox's lock while the poller works it.
	Locker Locker
	Logger *slog.Logger
	// TLSConfig verifies the server; nil means the system roots and the URL's host.
	TLSConfig *tls.Config
	// SpoolDir holds each fetched message while it is processed; empty means the
	// system temporary directory.
	SpoolDir string
	// PollInterval is how often a server without IDLE is asked for new mail (1m).
	PollInterval time.Duration
	// ResyncInterval is how often the whole mailbox is looked at again, for mail a
	// notification missed or a move that failed after its commit (5m).
	ResyncInterval time.Duration
	// IdleRestart ends and re-issues IDLE before servers drop an idle client: RFC
	// 2177 lets them do so after 30 minutes (25m).
	IdleRestart time.Duration
	// LockInterval is how often a standby tries the lock (5s). A holder checks it far
	// more often (lockCheck).
	LockInterval time.Duration
	// MinBackoff and MaxBackoff bound the wait before a reconnect (1s, 5m).
	MinBackoff, MaxBackoff time.Duration
	// MaxAttempts is how often a message may fail before it is quarantined (3).
	MaxAttempts int
	// Workers is how many messages are processed at once (8). Their commits overlap
	// each other's disk and database waits; the order of commits is then not the
	// order of UIDs, which is safe because every session begins with a full pass
	// over the mailbox, and mail leaves it only after its commit.
	Workers int
	// Observer, when set, is told of reconnects and notice-to-commit times.
	Observer Observer
}

// Poller works one mailbox. Build it with New and run it with Run.
type Poller struct {
	cfg Config
	log *slog.Logger

	// What the poller knows of the mailbox survives reconnects but not a change of
	// UIDVALIDITY or the loss of the lock (another instance may have worked it since).
	validity uint32
	last     imap.UID
	// failures counts failed attempts per UID. It is kept in memory: it only has to
	// outlive a reconnect, and after a restart a poison message gets at most
	// MaxAttempts more tries before it is quarantined, which is bounded and harmless.
	// Writing it to PostgreSQL would add writes on the very path where the database
	// may be what is failing.
	failures map[imap.UID]int
	// pending are failed messages to try again on the next pass.
	pending map[imap.UID]bool
	// wokeAt is when the server last announced new mail during IDLE.
	wokeAt time.Time

	// down holds the error that ended the last session while no new one is up.
	down atomic.Pointer[error]
	// spools are emptied spool files for the next messages.
	spools *spoolFiles
}

// New checks cfg and returns a Poller.
func New(cfg Config) (*Poller, error) {
	switch {
	case cfg.Processor == nil:
		return nil, errors.New("imap poller: no processor")
	case cfg.Store == nil:
		return nil, errors.New("imap poller: no store")
	case cfg.Locker == nil:
		return nil, errors.New("imap poller: no database for the mailbox lock")
	case cfg.Mailbox.Addr == "":
		return nil, errors.New("imap poller: no mailbox")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.PollInterval, time.Minute)
	def(&cfg.ResyncInterval, 5*time.Minute)
	def(&cfg.IdleRestart, 25*time.Minute)
	def(&cfg.LockInterval, 5*time.Second)
	def(&cfg.MinBackoff, time.Second)
	def(&cfg.MaxBackoff, 5*time.Minute)
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 3
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	// As many as can be in flight: two chunks spooled ahead of the workers.
	p := &Poller{cfg: cfg, log: cfg.Logger.With("mailbox", cfg.Mailbox.String()), spools: newSpoolFiles(2 * chunk)}
	p.reset()
	return p, nil
}

func (p *Poller) reset() {
	p.validity, p.last = 0, 0
	p.failures = map[imap.UID]int{}
	p.pending = map[imap.UID]bool{}
}

// Run works the mailbox while it holds the mailbox's lock, and waits for the lock while
// another instance holds it, until ctx ends. It returns nil on shutdown, after
// releasing the lock.
func (p *Poller) Run(ctx context.Context) error {
	defer p.spools.close()
	name := p.cfg.Mailbox.String()
	waiting := false
	for {
		held, err := p.cfg.Locker.WithLock(ctx, lockName(name), lockCheck, func(ctx context.Context) error {
			waiting = false
			p.log.Info("mailbox lock taken")
			// The holder this lock was taken from may not have noticed its loss yet.
			if casebook.Sleep(ctx, lockFence) != nil {
				return context.Cause(ctx)
			}
			p.work(ctx)
			return context.Cause(ctx)
		})
		if ctx.Err() != nil {
			if held {
				p.log.Info("mailbox lock released")
			}
			return nil
		}
		switch {
		case held:
			p.log.Warn("mailbox lock lost", slog.Any("error", err))
			p.reset()
		case err != nil:
			p.log.Warn("mailbox lock", slog.Any("error", err))
		case !waiting:
			p.log.Info("another instance works the mailbox; standing by")
			waiting = true
		}
		if casebook.Sleep(ctx, p.cfg.LockInterval) != nil {
			return nil
		}
	}
}

// work runs sessions until ctx ends, backing off between failures.
func (p *Poller) work(ctx context.Context) {
	backoff := casebook.Backoff{Min: p.cfg.MinBackoff, Max: p.cfg.MaxBackoff}
	for n := 0; ; n++ {
		if n > 0 && p.cfg.Observer != nil {
			p.cfg.Observer.IMAPReconnect(p.cfg.Mailbox.String())
		}
		healthy, err := p.session(ctx)
		if ctx.Err() != nil {
			p.down.Store(nil)
			return
		}
		p.down.Store(&err)
		if healthy {
			backoff.Reset()
		}
		wait := backoff.Next()
		p.log.Warn("mailbox session ended", slog.Any("error", err), "retry_in", wait.Round(time.Millisecond).String())
		if casebook.Sleep(ctx, wait) != nil {
			return
		}
	}
}

// session connects, catches up with the mailbox, then waits for and handles new mail
// until something fails. healthy reports that at least one pass completed.
func (p *Poller) session(ctx context.Context) (healthy bool, err error) {
	wake := make(chan struct{}, 1)
	c, err := p.dial(ctx, wake)
	if err != nil {
		return false, err
	}
	defer c.Close()
	// Closing the connection is the only way to interrupt a go-imap command.
	defer context.AfterFunc(ctx, func() { c.Close() })()

	folders, err := ensureFolders(c)
	if err != nil {
		return false, err
	}
	sel, err := c.Select(p.cfg.Mailbox.Name, nil).Wait()
	if err != nil {
		return false, fmt.Errorf("select %s: %w", p.cfg.Mailbox.Name, err)
	}
	if p.validity != 0 && sel.UIDValidity != p.validity {
		// RFC 9051 2.3.1.1: the old UIDs mean nothing now. Everything in the mailbox
		// is looked at again; what was already stored comes back as a duplicate.
		p.log.Warn("UIDVALIDITY changed; rescanning the mailbox", "old", p.validity, "new", sel.UIDValidity)
		p.reset()
	}
	p.validity = sel.UIDValidity
	loc := ingest.Location{Mailbox: p.cfg.Mailbox.String(), UIDValidity: sel.UIDValidity}
	v, err := p.cfg.Store.Checkpoint(ctx, ingest.CheckpointChannel, ingest.CheckpointKey(loc))
	switch {
	case errors.Is(err, casebook.ErrNotFound):
	case err != nil:
		return false, err
	default:
		uid, err := ingest.ParseCheckpoint(v)
		if err != nil {
			return false, err
		}
		p.last = max(p.last, imap.UID(uid))
	}

	s := &pass{p: p, c: c, folders: folders}
	full := true
	for {
		if err := s.run(ctx, full); err != nil {
			return healthy, err
		}
		healthy = true
		p.down.Store(nil)
		if full {
			s.resyncAt = time.Now().Add(p.cfg.ResyncInterval)
		}
		full, err = p.wait(ctx, c, wake, s.resyncAt)
		if err != nil {
			return healthy, err
		}
	}
}

// wait returns when there may be new mail: a server notification (IDLE), the poll
// interval, a retry of a failed message, or the periodic resync, which it reports.
func (p *Poller) wait(ctx context.Context, c *imapclient.Client, wake <-chan struct{}, resyncAt time.Time) (resync bool, err error) {
	d := time.Until(resyncAt)
	if len(p.pending) > 0 {
		d = min(d, p.cfg.MinBackoff)
	}
	if !c.Caps().Has(imap.CapIdle) {
		d = min(d, p.cfg.PollInterval)
		if err := casebook.Sleep(ctx, d); err != nil {
			return false, err
		}
		return !time.Now().Before(resyncAt), nil
	}
	select {
	case <-wake:
		return false, nil
	default:
	}
	d = min(d, p.cfg.IdleRestart)
	idle, err := c.Idle()
	if err != nil {
		return false, fmt.Errorf("idle: %w", err)
	}
	t := time.NewTimer(max(d, 0))
	defer t.Stop()
	select {
	case <-wake:
		p.wokeAt = time.Now()
	case <-t.C:
	case <-ctx.Done():
	case <-c.Closed():
	}
	if err := idle.Close(); err != nil {
		return false, fmt.Errorf("idle: %w", err)
	}
	if err := idle.Wait(); err != nil {
		return false, fmt.Errorf("idle: %w", err)
	}
	return !time.Now().Before(resyncAt), ctx.Err()
}

// Ready reports an error while the poller cannot reach its mailbox: from a failed
// session until the next one has caught up. Standing by for the lock is ready.
func (p *Poller) Ready(context.Context) error {
	if err := p.down.Load(); err != nil {
		return fmt.Errorf("mailbox %s: %w", p.cfg.Mailbox, *err)
	}
	return nil
}
