package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/casebookhq/casebook/ingest/imap"
)

// BackfillConfig is `casebook ingest --mailbox`'s part of Config.
type BackfillConfig struct {
	// Mailbox names the folder to work through: a folder of the one --imap account, a
	// configured mailbox, or a mailbox URL.
	Mailbox string
	// Since is the first day of mail to take, YYYY-MM-DD; empty takes all.
	Since string
}

// backfillFlags registers the backfill's flags on `casebook ingest`.
func (c *Config) backfillFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Backfill.Mailbox, "mailbox", "", "work through this mailbox instead of files: a folder of the --imap account (INBOX, Archive), or a mailbox URL")
	fs.StringVar(&c.Backfill.Since, "since", "", "with --mailbox: first day of mail to take, like 2026-01-01 (by the server's arrival date); all mail when empty")
	c.imapFlags(fs)
}

// backfill works through --mailbox since --since with a progress bar on a terminal and
// plain progress lines otherwise. It changes nothing in the mailbox and may be stopped
// and run again: it goes on where it stopped.
func (a *app) backfill(ctx context.Context, args []string, dryRun bool) error {
	if len(args) > 0 {
		return fmt.Errorf("%w: give --mailbox or .eml files, not both", errUsage)
	}
	if dryRun {
		return fmt.Errorf("%w: --dry-run is for .eml files; a backfill only reads the mailbox and may be run again", errUsage)
	}
	var since time.Time
	if s := a.cfg.Backfill.Since; s != "" {
		t, err := time.ParseInLocation(time.DateOnly, s, time.UTC)
		if err != nil {
			return fmt.Errorf("%w: --since %q: want a day like 2026-01-01", errUsage, s)
		}
		since = t
	}
	mb, err := a.backfillMailbox(a.cfg.Backfill.Mailbox)
	if err != nil {
		return err
	}
	st, err := a.store(ctx)
	if err != nil {
		return err
	}
	proc, err := a.processor(ctx)
	if err != nil {
		return err
	}
	label := "backfill " + mb.String()
	var bar *progress
	report := func(p imap.BackfillProgress) {
		if bar == nil {
			bar = newProgress(a.stderr, isTerminal(a.stderr), label, p.Total-p.Skipped, time.Now)
		}
		bar.update(p.Done-p.Skipped, fmt.Sprintf("%d added or already there, %d quarantined, %d ignored, %d failed",
			p.Processed, p.Quarantined, p.Ignored, p.Failed))
	}
	prog, err := imap.Backfill(ctx, imap.BackfillConfig{
		Mailbox:   mb,
		Since:     since,
		Processor: proc,
		Store:     st,
		SpoolDir:  a.cfg.IMAP.SpoolDir,
		Logger:    a.log,
	}, report)
	if bar != nil {
		bar.finish()
	}
	if errors.Is(err, context.Canceled) {
		err = fmt.Errorf("stopped after %d of %d messages: run the same command again to go on", prog.Done, prog.Total)
	}
	if err != nil {
		return err
	}
	human := fmt.Sprintf("%s: %d messages since %s, %d done before; %d added or already there, %d quarantined, %d ignored, %d failed",
		mb, prog.Total, sinceLabel(since), prog.Skipped, prog.Processed, prog.Quarantined, prog.Ignored, prog.Failed)
	if prog.Failed > 0 {
		human += "\nthe failed ones are in the log; run the same command again to retry them"
	}
	return a.print(prog, human)
}

func sinceLabel(t time.Time) string {
	if t.IsZero() {
		return "the start"
	}
	return t.Format(time.DateOnly)
}

// backfillMailbox resolves --mailbox: a mailbox URL; a configured --imap mailbox by
// its name; or, with one --imap account, a folder of that account.
func (a *app) backfillMailbox(name string) (imap.Mailbox, error) {
	if strings.Contains(name, "://") {
		m, err := a.mailbox(name)
		if err != nil {
			return imap.Mailbox{}, fmt.Errorf("--mailbox: %w", err)
		}
		return m, nil
	}
	var configured []imap.Mailbox
	for _, raw := range a.cfg.IMAP.Mailboxes {
		m, err := a.mailbox(raw)
		if err != nil {
			return imap.Mailbox{}, fmt.Errorf("--imap: %w", err)
		}
		if m.String() == name {
			return m, nil
		}
		configured = append(configured, m)
	}
	switch len(configured) {
	case 0:
		return imap.Mailbox{}, fmt.Errorf("%w: --mailbox %s needs the account: give --imap (or CASEBOOK_IMAP) or a mailbox URL", errUsage, name)
	case 1:
		m := configured[0]
		m.Name = name
		return m, nil
	}
	names := make([]string, len(configured))
	for i, m := range configured {
		names[i] = m.String()
	}
	return imap.Mailbox{}, fmt.Errorf("%w: several --imap accounts: give --mailbox as a mailbox URL, or as one of %s", errUsage, strings.Join(names, ", "))
}

// isTerminal reports whether w is a terminal, where a redrawn bar makes sense.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
