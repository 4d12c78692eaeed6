package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"slices"
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
			if a.cfg.Clamd == "" {
				a.log.Warn("no malware scanner configured (--clamd): files are stored without a scan")
			}
			comps, err := a.components(ctx)
			if err != nil {
				return err
			}
			if len(comps) == 0 {
				return errors.New("nothing to serve: configure --http, --imap, --smtp or a bot")
			}
			if a.cfg.BlobKeyFile == "" {
				a.log.Warn("files are stored unencrypted: no --blob-key-file (see README, Encryption at rest)")
			}
			// The admin listener and the sweep serve the others: alone they are not
			// worth running.
			admin, err := a.adminComponents(ctx)
			if err != nil {
				return err
			}
			sweep, err := a.blobSweepComponent(ctx)
			if err != nil {
				return err
			}
			anchor, err := a.auditAnchorComponent(ctx)
			if err != nil {
				return err
			}
			return runComponents(ctx, a, slices.Concat(comps, admin, sweep, []component{anchor}))
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

// components builds every configured part of the service.
func (a *app) components(ctx context.Context) ([]component, error) {
	var comps []component
	// webComponents comes last: the builders before it may mount endpoints on the page.
	for _, build := range []func(context.Context) ([]component, error){a.imapComponents, a.discordComponents, a.slackComponents, a.webComponents, a.outboxComponents} {
		cs, err := build(ctx)
		if err != nil {
			return nil, err
		}
		comps = append(comps, cs...)
	}
	a.readyOAuth()
	return comps, nil
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
