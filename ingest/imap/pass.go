package imap

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/ingest"
)

// chunk is how many messages one UID FETCH asks for. Spooled messages wait on disk
// for the processor; at most two chunks are outstanding, which bounds the spool and
// keeps the client from stalling inside a FETCH response (go-imap gives a response
// 30 s, measured from its first byte).
const chunk = 16

// errCut is a literal that ended early: the connection dropped inside it.
var errCut = errors.New("connection cut inside a message")

// pass handles mail on one connection: it fetches the messages, hands them to the
// processor in UID order while later ones are fetched, and files the handled ones.
type pass struct {
	p        *Poller
	c        *imapclient.Client
	folders  map[ingest.Disposition]string
	resyncAt time.Time

	// copyBuf carries literals to their spool files; only the fetching goroutine uses it.
	copyBuf []byte

	// mu guards moves, and the poller's last, failures and pending while workers run.
	mu    sync.Mutex
	moves map[ingest.Disposition][]imap.UID
}

type spooled struct {
	uid  imap.UID
	file *os.File
}

// run handles every message in the mailbox when full, else the messages above the
// last UID seen plus the ones waiting for a retry.
func (s *pass) run(ctx context.Context, full bool) error {
	p := s.p
	crit := &imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagDeleted}}
	if !full {
		var set imap.UIDSet
		for uid := range p.pending {
			set.AddNum(uid)
		}
		set.AddRange(p.last+1, 0)
		crit.UID = []imap.UIDSet{set}
	}
	data, err := s.c.UIDSearch(crit, nil).Wait()
	if err != nil {
		return fmt.Errorf("search: %w", err)
	}
	var uids []imap.UID
	for _, uid := range data.AllUIDs() {
		// "n:*" names the last message even when n is above it (RFC 9051 6.4.8).
		if full || uid > p.last || p.pending[uid] {
			uids = append(uids, uid)
		}
	}
	slices.Sort(uids)
	defer func() { p.wokeAt = time.Time{} }()
	if len(uids) == 0 {
		return s.flushMoves(ctx)
	}
	return s.handle(ctx, uids)
}

func (s *pass) handle(ctx context.Context, uids []imap.UID) error {
	out := make(chan spooled, 2*chunk)
	slots := make(chan struct{}, 2*chunk)
	fetchErr := make(chan error, 1)
	go func() {
		defer close(out)
		fetchErr <- s.fetch(ctx, uids, out, slots)
	}()
	var (
		wg      sync.WaitGroup
		errMu   sync.Mutex
		procErr error
	)
	for range s.p.cfg.Workers {
		wg.Go(func() {
			for sp := range out {
				errMu.Lock()
				failed := procErr != nil
				errMu.Unlock()
				if !failed {
					if err := s.process(ctx, sp); err != nil {
						errMu.Lock()
						procErr = cmp.Or(procErr, err)
						errMu.Unlock()
						// Stop the fetch; what was spooled is dropped and fetched again.
						s.c.Close()
					}
				}
				s.p.spools.put(sp.file)
				<-slots
			}
		})
	}
	wg.Wait()
	if err := errors.Join(procErr, <-fetchErr); err != nil {
		return err
	}
	return s.flushMoves(ctx)
}

// fetch spools each message of uids to a temporary file and sends it on out. Before
// each FETCH it takes a slot per message, so that sends inside a response never block.
func (s *pass) fetch(ctx context.Context, uids []imap.UID, out chan<- spooled, slots chan struct{}) error {
	for start := 0; start < len(uids); start += chunk {
		part := uids[start:min(start+chunk, len(uids))]
		for range part {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		sent, err := s.fetchChunk(part, out)
		for range len(part) - sent {
			<-slots
		}
		if err != nil {
			return err
		}
		// Moves go between FETCHes, from this goroutine, so that no EXPUNGE
		// renumbers messages under a running FETCH.
		if err := s.flushMoves(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (s *pass) fetchChunk(uids []imap.UID, out chan<- spooled) (sent int, err error) {
	cmd := s.c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{
		UID:         true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	})
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		var (
			uid  imap.UID
			file *os.File
		)
		for item := msg.Next(); item != nil; item = msg.Next() {
			switch it := item.(type) {
			case imapclient.FetchItemDataUID:
				uid = it.UID
			case imapclient.FetchItemDataBodySection:
				if file != nil || it.Literal == nil {
					continue
				}
				file, err = s.spool(it.Literal)
				if err != nil {
					// Reading on after a broken literal races go-imap's reader:
					// drop the connection instead.
					s.c.Close()
					return sent, err
				}
			}
		}
		if uid == 0 || file == nil || !slices.Contains(uids, uid) {
			// A FETCH the server sent on its own (a flag change), not our message.
			if file != nil {
				file.Close()
			}
			continue
		}
		out <- spooled{uid: uid, file: file}
		sent++
	}
	if err := cmd.Close(); err != nil {
		return sent, fmt.Errorf("fetch: %w", err)
	}
	return sent, nil
}

// spool copies a literal to a temporary file at the speed of the socket, so that the
// processor's slower work never holds the connection inside a response.
func (s *pass) spool(lit imap.LiteralReader) (*os.File, error) {
	f, err := s.p.spools.get(s.p.cfg.SpoolDir)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	if s.copyBuf == nil {
		s.copyBuf = make([]byte, 64<<10)
	}
	// The file hidden behind a plain Writer, so that the copy goes through copyBuf
	// rather than a new buffer of its own each time.
	n, err := io.CopyBuffer(struct{ io.Writer }{f}, lit, s.copyBuf)
	if err == nil && n < lit.Size() {
		// go-imap takes the EOF of a dropped connection for the end of the literal.
		err = errCut
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("spool: %w", err)
	}
	return f, nil
}

// process hands one message to the processor and queues it for filing. It returns an
// error only when the database or the malware scanner is down: then nothing more can
// be committed and the session should end. A failing message is retried on later passes and quarantined
// after MaxAttempts, never holding up the mail behind it. Workers call it
// concurrently; s.mu guards the poller's state.
func (s *pass) process(ctx context.Context, sp spooled) error {
	p := s.p
	loc := ingest.Location{Mailbox: p.cfg.Mailbox.String(), UIDValidity: p.validity, UID: uint32(sp.uid)}
	log := p.log.With("uid", uint32(sp.uid))
	res, err := p.callProcessor(ctx, loc, sp.file)
	if err == nil {
		s.mu.Lock()
		p.last = max(p.last, sp.uid)
		delete(p.failures, sp.uid)
		delete(p.pending, sp.uid)
		s.queueMoveLocked(res.Disposition, sp.uid)
		s.mu.Unlock()
		if !p.wokeAt.IsZero() && p.cfg.Observer != nil {
			p.cfg.Observer.IdleWakeToCommit(loc.Mailbox, time.Since(p.wokeAt))
		}
		log.Info("message handled", "outcome", string(res.Disposition), "case", res.Case, "reason", res.Reason)
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if perr := p.cfg.Store.Ping(ctx); perr != nil {
		// Not the message's fault: do not count it.
		return fmt.Errorf("process uid %d: %w (database: %v)", sp.uid, err, perr)
	}
	if errors.Is(err, casebook.ErrScanUnavailable) {
		// Nor is a malware scanner that cannot answer: the mail stays in the mailbox and
		// the session backs off as it does while the database is down.
		return fmt.Errorf("process uid %d: %w", sp.uid, err)
	}
	s.mu.Lock()
	p.last = max(p.last, sp.uid)
	p.failures[sp.uid]++
	n := p.failures[sp.uid]
	poison := n >= p.cfg.MaxAttempts
	if poison {
		delete(p.failures, sp.uid)
		delete(p.pending, sp.uid)
	} else {
		p.pending[sp.uid] = true
	}
	s.mu.Unlock()
	if !poison {
		log.Warn("message failed; will retry", "attempt", n, slog.Any("error", err))
		return nil
	}
	log.Error("message failed repeatedly; moving it to quarantine", "attempts", n, slog.Any("error", err))
	if q, ok := p.cfg.Processor.(Quarantiner); ok {
		reason := fmt.Sprintf("handling failed %d times: %v", n, err)
		if _, err := sp.file.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		if _, qerr := q.Quarantine(ctx, loc, sp.file, reason); qerr != nil {
			// Filed in the folder all the same: it must not block the mail behind it.
			log.Error("recording the poison message failed", slog.Any("error", qerr))
		}
	}
	s.mu.Lock()
	s.queueMoveLocked(ingest.Quarantined, sp.uid)
	s.mu.Unlock()
	return nil
}

// callProcessor runs the processor, counting a panic against the message.
func (p *Poller) callProcessor(ctx context.Context, loc ingest.Location, f *os.File) (res ingest.Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("processor panic: %v", r)
		}
	}()
	return p.cfg.Processor.Process(ctx, loc, f)
}

func (s *pass) queueMoveLocked(d ingest.Disposition, uid imap.UID) {
	if _, ok := s.folders[d]; !ok {
		d = ingest.Quarantined
	}
	if s.moves == nil {
		s.moves = map[ingest.Disposition][]imap.UID{}
	}
	s.moves[d] = append(s.moves[d], uid)
}

// flushMoves files the handled messages. A move that fails leaves the message in
// place; its update is committed, so the next full pass sees a duplicate and files it.
// The lock is checked first: a holder that lost it leaves the filing to the next one,
// which may be moving the same messages already.
func (s *pass) flushMoves(ctx context.Context) error {
	s.mu.Lock()
	moves := s.moves
	s.moves = nil
	s.mu.Unlock()
	if len(moves) == 0 {
		return nil
	}
	if err := s.p.cfg.Locker.HoldsLock(ctx); err != nil {
		return fmt.Errorf("file handled mail: %w", err)
	}
	for d, uids := range moves {
		if err := move(s.c, imap.UIDSetNum(uids...), s.folders[d]); err != nil {
			return err
		}
	}
	return nil
}

// move moves messages by UID. Without MOVE (RFC 6851) it copies, checks the copy,
// marks the originals \Deleted and expunges exactly those (UIDPLUS, RFC 4315); go-imap's
// own fallback pipelines these without checking the COPY and can lose mail.
func move(c *imapclient.Client, set imap.UIDSet, folder string) error {
	if c.Caps().Has(imap.CapMove) {
		if _, err := c.Move(set, folder).Wait(); err != nil {
			return fmt.Errorf("move to %s: %w", folder, err)
		}
		return nil
	}
	if _, err := c.Copy(set, folder).Wait(); err != nil {
		return fmt.Errorf("copy to %s: %w", folder, err)
	}
	store := &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}
	if err := c.Store(set, store, nil).Close(); err != nil {
		return fmt.Errorf("flag moved messages: %w", err)
	}
	if !c.Caps().Has(imap.CapUIDPlus) {
		// A plain EXPUNGE would also remove messages others marked \Deleted; the
		// flagged copies stay until someone expunges, and searches skip them.
		return nil
	}
	if err := c.UIDExpunge(set).Close(); err != nil {
		return fmt.Errorf("expunge moved messages: %w", err)
	}
	return nil
}
