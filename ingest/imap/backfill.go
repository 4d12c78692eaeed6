package imap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/ingest"
)

// BackfillChannel is the checkpoint channel of backfills: apart from the poller's, so
// that a backfill never moves the position the poller works from.
const BackfillChannel = "imap-backfill"

// BackfillStore keeps a backfill's position, so that a rerun skips what is done.
type BackfillStore interface {
	// Checkpoint returns a channel position, or an error wrapping casebook.ErrNotFound.
	Checkpoint(ctx context.Context, channel, key string) (string, error)
	SaveCheckpoint(ctx context.Context, c casebook.Checkpoint) error
}

// BackfillConfig configures Backfill.
type BackfillConfig struct {
	Mailbox Mailbox
	// Since is the first day whose mail is taken, by the server's arrival date.
	Since     time.Time
	Processor ingest.Processor
	Store     BackfillStore
	// TLSConfig verifies the server; nil means the system roots and the URL's host.
	TLSConfig *tls.Config
	// SpoolDir holds each fetched message while it is processed.
	SpoolDir string
	Logger   *slog.Logger
}

// BackfillProgress says how far a backfill is.
type BackfillProgress struct {
	// Total is the number of messages since the date; Done how many of them are
	// handled, Skipped of which an earlier run did.
	Total   int `json:"total"`
	Done    int `json:"done"`
	Skipped int `json:"skipped"`
	// What became of the messages this run handled.
	Processed   int `json:"processed"`
	Quarantined int `json:"quarantined"`
	Ignored     int `json:"ignored"`
	Failed      int `json:"failed"`
}

// Backfill works through the mail that arrived in the mailbox on or after Since
// (SEARCH SINCE compares the server's internal date by day, RFC 9051 6.4.4), handing
// each message to the processor in UID order, and calls report after each.
//
// The mailbox is opened read-only (EXAMINE) and fetched with BODY.PEEK: nothing is
// moved or marked, so a backfill can run beside the poller. Each message goes to the
// processor without a mailbox position, so the poller's checkpoint is never touched;
// the backfill keeps its own under BackfillChannel, advanced past every message
// handled while none before it failed. Interrupted, a rerun starts where it stopped;
// anything handled twice is a duplicate the write path stores once.
func Backfill(ctx context.Context, cfg BackfillConfig, report func(BackfillProgress)) (BackfillProgress, error) {
	var prog BackfillProgress
	if cfg.Processor == nil || cfg.Store == nil {
		return prog, errors.New("backfill: a processor and a store are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Poller{cfg: Config{Mailbox: cfg.Mailbox, Processor: cfg.Processor, TLSConfig: cfg.TLSConfig, SpoolDir: cfg.SpoolDir, Logger: cfg.Logger},
		log: cfg.Logger.With("mailbox", cfg.Mailbox.String())}
	p.reset()
	c, err := p.dial(ctx, make(chan struct{}, 1))
	if err != nil {
		return prog, fmt.Errorf("backfill: %w", err)
	}
	defer c.Close()
	defer context.AfterFunc(ctx, func() { c.Close() })()

	sel, err := c.Select(cfg.Mailbox.Name, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return prog, fmt.Errorf("backfill: examine %s: %w", cfg.Mailbox.Name, err)
	}
	p.validity = sel.UIDValidity
	loc := ingest.Location{Mailbox: cfg.Mailbox.String(), UIDValidity: sel.UIDValidity}
	key := ingest.CheckpointKey(loc) + ";since=" + cfg.Since.Format(time.DateOnly)
	var done imap.UID
	switch v, err := cfg.Store.Checkpoint(ctx, BackfillChannel, key); {
	case errors.Is(err, casebook.ErrNotFound):
	case err != nil:
		return prog, fmt.Errorf("backfill: %w", err)
	default:
		uid, err := ingest.ParseCheckpoint(v)
		if err != nil {
			return prog, fmt.Errorf("backfill: %w", err)
		}
		done = imap.UID(uid)
	}

	data, err := c.UIDSearch(&imap.SearchCriteria{Since: cfg.Since, NotFlag: []imap.Flag{imap.FlagDeleted}}, nil).Wait()
	if err != nil {
		return prog, fmt.Errorf("backfill: search: %w", err)
	}
	uids := data.AllUIDs()
	slices.Sort(uids)
	prog.Total = len(uids)
	var todo []imap.UID
	for _, uid := range uids {
		if uid <= done {
			prog.Skipped++
			continue
		}
		todo = append(todo, uid)
	}
	prog.Done = prog.Skipped
	if report != nil {
		report(prog)
	}
	s := &pass{p: p, c: c}
	advancing := true
	for start := 0; start < len(todo); start += chunk {
		part := todo[start:min(start+chunk, len(todo))]
		out := make(chan spooled, len(part))
		_, err := s.fetchChunk(part, out)
		close(out)
		for sp := range out {
			if err == nil {
				err = ctx.Err()
			}
			if err == nil {
				var ok bool
				ok, err = s.backfillOne(ctx, cfg, &prog, sp)
				if ok && advancing {
					// The message is committed: its position is saved even when the run is
					// being interrupted, so the rerun does not start before it.
					cp := casebook.Checkpoint{Channel: BackfillChannel, Key: key, Value: strconv.FormatUint(uint64(sp.uid), 10)}
					sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
					if serr := cfg.Store.SaveCheckpoint(sctx, cp); serr != nil {
						err = fmt.Errorf("backfill: %w", serr)
					}
					cancel()
				}
				advancing = advancing && ok
				if report != nil {
					report(prog)
				}
			}
			sp.file.Close()
			os.Remove(sp.file.Name())
		}
		if err != nil {
			if ctx.Err() != nil {
				return prog, ctx.Err()
			}
			return prog, fmt.Errorf("backfill: %w", err)
		}
	}
	return prog, nil
}

// backfillOne hands one message to the processor. A message that fails is counted
// and left for the next run; only a cancelled context ends the backfill.
func (s *pass) backfillOne(ctx context.Context, cfg BackfillConfig, prog *BackfillProgress, sp spooled) (bool, error) {
	res, err := s.p.callProcessor(ctx, ingest.Location{}, sp.file)
	if err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		prog.Failed++
		prog.Done++
		s.p.log.Warn("backfill: message failed; a rerun tries it again", "uid", uint32(sp.uid), slog.Any("error", err))
		return false, nil
	}
	prog.Done++
	switch res.Disposition {
	case ingest.Processed:
		prog.Processed++
	case ingest.Ignored:
		prog.Ignored++
	default:
		prog.Quarantined++
	}
	return true, nil
}
