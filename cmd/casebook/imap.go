package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/casebookhq/casebook/casebook/postgres"
	"github.com/casebookhq/casebook/ingest"
	"github.com/casebookhq/casebook/ingest/imap"
)

// IMAPConfig is the IMAP poller's part of Config.
type IMAPConfig struct {
	// Mailboxes are mailbox URLs, each worked by one poller.
	Mailboxes      []string
	PollInterval   time.Duration
	ResyncInterval time.Duration
	// SpoolDir holds each fetched message while it is processed.
	SpoolDir string
}

func (c *Config) imapFlags(fs *flag.FlagSet) {
	fs.Var(listValue{&c.IMAP.Mailboxes}, "imap",
		"mailbox to watch, repeatable: imaps://USER:PASS@HOST:993/INBOX (imap:// requires STARTTLS; ?tls=none for loopback only; ?password_file=PATH; ?auth=xoauth2 with oauth=microsoft|google|generic&client_id=… or an access token in password_file)")
	fs.DurationVar(&c.IMAP.PollInterval, "imap-poll-interval", time.Minute, "how often to look for mail on a server without IDLE")
	fs.DurationVar(&c.IMAP.ResyncInterval, "imap-resync-interval", 5*time.Minute, "how often to look at the whole mailbox again, for mail a notification missed")
	fs.StringVar(&c.IMAP.SpoolDir, "imap-spool-dir", "", "directory for messages being processed (default: the system temporary directory)")
}

// imapProcessor counts what the poller hands over and lets it quarantine a poison
// message through the mail processor.
type imapProcessor struct {
	countingProcessor
	mail *ingest.MailProcessor
}

var (
	_ imap.Quarantiner = imapProcessor{}
	_ imap.Locker      = (*postgres.Store)(nil)
)

func (p imapProcessor) Quarantine(ctx context.Context, loc ingest.Location, raw io.ReadSeeker, reason string) (ingest.Result, error) {
	r, err := p.mail.Quarantine(ctx, loc, raw, reason)
	if err == nil {
		p.m.Quarantined(string(r.Code))
	}
	return r, err
}

// mailboxes reads the --imap URLs, each once.
func (a *app) mailboxes() ([]imap.Mailbox, error) {
	var mailboxes []imap.Mailbox
	seen := map[string]bool{}
	for _, raw := range a.cfg.IMAP.Mailboxes {
		m, err := a.mailbox(raw)
		if err != nil {
			return nil, fmt.Errorf("--imap: %w", err)
		}
		if seen[m.String()] {
			return nil, fmt.Errorf("--imap: %s is given twice", m)
		}
		seen[m.String()] = true
		mailboxes = append(mailboxes, m)
	}
	return mailboxes, nil
}

// imapComponents runs one poller per mailbox.
func (a *app) imapComponents(ctx context.Context, mailboxes []imap.Mailbox) ([]component, error) {
	if len(mailboxes) == 0 {
		return nil, nil
	}
	mp, err := a.processor(ctx)
	if err != nil {
		return nil, err
	}
	st, err := a.store(ctx)
	if err != nil {
		return nil, err
	}
	proc := imapProcessor{countingProcessor: countingProcessor{next: mp, m: a.promMetrics()}, mail: mp}
	var comps []component
	for _, m := range mailboxes {
		p, err := imap.New(imap.Config{
			Mailbox:        m,
			Processor:      proc,
			Store:          st,
			Locker:         st,
			Logger:         a.log,
			SpoolDir:       a.cfg.IMAP.SpoolDir,
			PollInterval:   a.cfg.IMAP.PollInterval,
			ResyncInterval: a.cfg.IMAP.ResyncInterval,
			Observer:       a.promMetrics(),
		})
		if err != nil {
			return nil, err
		}
		if a.cfg.Admin != "" {
			a.ready("imap "+m.String(), p.Ready)
		}
		comps = append(comps, component{name: "imap " + m.String(), run: p.Run})
	}
	return comps, nil
}
