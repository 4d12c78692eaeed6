package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// shutdownTimeout bounds a graceful stop: components get this long after SIGTERM.
const shutdownTimeout = 10 * time.Second

// component is a long-lived part of `casebook serve`. run returns when ctx ends.
type component struct {
	name string
	run  func(ctx context.Context) error
}

func serveCommand() command {
	return command{
		help: "run everything configured (mail poller, outbox, web page, bots) until SIGINT or SIGTERM",
		flags: func(fs *flag.FlagSet, a *app) {
			a.cfg.adminFlags(fs)
			a.cfg.outboxFlags(fs)
			a.cfg.webFlags(fs)
			a.cfg.discordFlags(fs)
			a.cfg.slackFlags(fs)
			a.cfg.mailFlags(fs)
			a.cfg.imapFlags(fs)
			blobGraceFlag(fs, &a.cfg)
		},
		run: func(ctx context.Context, a *app, _ []string) error {
			comps, err := a.buildServe(ctx)
			if err != nil {
				return err
			}
			return runComponents(ctx, a, comps)
		},
	}
}

// auditAnchorEvery is how often serve logs the audit log's newest row. Logs leave the
// machine (journald forwarding, a log service), which is what makes them a place to
// keep anchors that a person able to rewrite the database cannot reach.
const auditAnchorEvery = time.Hour

// auditAnchorComponent logs an anchor of the audit log at start and every hour, for
// `casebook audit --verify --anchor ID:HASH`.
func (a *app) auditAnchorComponent(ctx context.Context) (component, error) {
	st, err := a.store(ctx)
	if err != nil {
		return component{}, err
	}
	if a.cfg.AuditKeyFile == "" {
		a.log.Warn("the audit log is not keyed: set --audit-key-file (CASEBOOK_AUDIT_KEY_FILE) so that a rewritten log can be told apart")
	}
	return component{name: "audit-anchor", run: func(ctx context.Context) error {
		t := time.NewTicker(auditAnchorEvery)
		defer t.Stop()
		for {
			if an, err := st.LatestAuditAnchor(ctx); err != nil {
				if ctx.Err() == nil {
					a.log.Warn("cannot read the audit anchor", slog.Any("error", err))
				}
			} else {
				a.log.Info("audit anchor", "id", an.ID, "hash", an.Hash, "anchor", an.String())
			}
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	}}, nil
}

// buildServe validates the whole configuration of `casebook serve`, then builds every
// configured part in dependency order, before any of them runs: the store, blobs and
// domain service; the channels (mailboxes, Discord, Slack, whose Events API the web
// page mounts); the web page; the outbox; and what serves them all (the admin
// listener, the blob sweep, the audit anchor).
func (a *app) buildServe(ctx context.Context) ([]component, error) {
	if err := a.cfg.validateServe(); err != nil {
		return nil, err
	}
	mailboxes, err := a.mailboxes()
	if err != nil {
		return nil, err
	}
	if a.cfg.Outbox.SMTP != "" {
		if _, err := a.smtpDialer(); err != nil {
			return nil, err
		}
	}
	if _, _, _, err := a.core(ctx); err != nil {
		return nil, err
	}
	if a.cfg.Clamd == "" {
		a.log.Warn("no malware scanner configured (--clamd): files are stored without a scan")
	}
	if a.cfg.BlobKeyFile == "" {
		a.log.Warn("files are stored unencrypted: no --blob-key-file (see README, Encryption at rest)")
	}
	var comps []component
	add := func(cs []component, err error) error {
		comps = append(comps, cs...)
		return err
	}
	if err := add(a.imapComponents(ctx, mailboxes)); err != nil {
		return nil, err
	}
	if err := add(a.discordComponents(ctx)); err != nil {
		return nil, err
	}
	slackComps, events, err := a.slackComponents(ctx)
	if err := add(slackComps, err); err != nil {
		return nil, err
	}
	var extra map[string]http.Handler
	if events != nil {
		extra = map[string]http.Handler{slackEventsPath: events}
	}
	if err := add(a.webComponents(ctx, extra)); err != nil {
		return nil, err
	}
	if err := add(a.outboxComponents(ctx)); err != nil {
		return nil, err
	}
	a.readyOAuth()
	if len(comps) == 0 {
		return nil, errors.New("nothing to serve: configure --http, --imap, --smtp or a bot")
	}
	// The admin listener, the sweep and the anchor serve the others: alone they are
	// not worth running.
	if err := add(a.adminComponents(ctx)); err != nil {
		return nil, err
	}
	if err := add(a.blobSweepComponent(ctx)); err != nil {
		return nil, err
	}
	anchor, err := a.auditAnchorComponent(ctx)
	if err != nil {
		return nil, err
	}
	return append(comps, anchor), nil
}

// validateServe checks what `casebook serve` needs beyond Validate, all of it before
// anything is opened, so that every mistake in the configuration is named at once.
func (c *Config) validateServe() error {
	var errs []error
	if c.Web.HTTP != "" {
		errs = append(errs, c.validateWeb())
	}
	if s := c.Slack; s.BotToken != "" {
		if s.AppToken == "" && s.SigningSecret == "" {
			errs = append(errs, errors.New("slack: set --slack-app-token (Socket Mode) or --slack-signing-secret (Events API), or both"))
		}
		if s.AppToken == "" && c.Web.HTTP == "" {
			errs = append(errs, errors.New("slack: the Events API needs the web page (--http), or use Socket Mode with --slack-app-token"))
		}
	}
	if len(c.IMAP.Mailboxes) > 0 && (c.IMAP.PollInterval <= 0 || c.IMAP.ResyncInterval <= 0) {
		errs = append(errs, errors.New("--imap-poll-interval and --imap-resync-interval must be positive"))
	}
	if c.Outbox.SMTP != "" {
		var missing []string
		if c.BaseURL == "" {
			missing = append(missing, "--base-url")
		}
		if c.Outbox.From == "" {
			missing = append(missing, "--mail-from")
		}
		if len(missing) > 0 {
			errs = append(errs, fmt.Errorf("sending mail (--smtp) also needs %s", strings.Join(missing, ", ")))
		}
	}
	return errors.Join(errs...)
}

// runComponents runs comps until ctx ends or one fails, then gives the rest
// shutdownTimeout to stop.
func runComponents(ctx context.Context, a *app, comps []component) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for _, c := range comps {
		wg.Go(func() {
			a.log.Info("starting", "component", c.name)
			err := c.run(ctx)
			if err != nil && !errors.Is(err, context.Canceled) {
				cancel(fmt.Errorf("%s: %w", c.name, err))
			}
			a.log.Info("stopped", "component", c.name)
		})
	}
	<-ctx.Done()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(shutdownTimeout):
		a.log.Warn("components did not stop in time", "timeout", shutdownTimeout)
	}
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
