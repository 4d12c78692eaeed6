package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/casebookhq/casebook/bots/slack"
	"github.com/casebookhq/casebook/casebook/clamav"
	"github.com/casebookhq/casebook/casebook/doctor"
	"github.com/casebookhq/casebook/casebook/postgres"
)

// doctorTimeout bounds each check: a dependency that has not answered by then is as
// good as down for an operator waiting at a terminal.
const doctorTimeout = 15 * time.Second

func doctorCommand() command {
	return command{
		help: "check every configured dependency (database, blobs, clamd, mailboxes, SMTP, Slack, Discord, clock) and say what to fix",
		flags: func(fs *flag.FlagSet, a *app) {
			// The doctor checks what `casebook serve` would use, so it takes its flags.
			if f := serveCommand().flags; f != nil {
				f(fs, a)
			}
		},
		run: func(ctx context.Context, a *app, _ []string) error {
			checks, cleanup := a.doctorChecks()
			rs := doctor.Run(ctx, checks, doctorTimeout)
			cleanup()
			if a.cfg.JSON {
				enc := json.NewEncoder(a.stdout)
				for _, r := range rs {
					if err := enc.Encode(r); err != nil {
						return err
					}
				}
			} else if err := doctor.Print(a.stdout, rs); err != nil {
				return err
			}
			n := 0
			for _, r := range rs {
				if r.Status == doctor.Fail {
					n++
				}
			}
			if n > 0 {
				return fmt.Errorf("%d of %d checks failed", n, len(rs))
			}
			return nil
		},
	}
}

// doctorChecks lists a check for each dependency the config names, and a func that
// closes what they opened. The database checks share one pool, opened by whichever
// runs first (two at once could both try to create a missing database).
func (a *app) doctorChecks() ([]doctor.Check, func()) {
	var once sync.Once
	var st *postgres.Store
	var openErr error
	open := func(ctx context.Context) (doctor.Database, func(), error) {
		once.Do(func() { st, openErr = postgres.Open(ctx, a.cfg.DatabaseURL) })
		if openErr != nil {
			return nil, nil, openErr
		}
		return st, func() {}, nil
	}
	cleanup := func() {
		if st != nil {
			st.Close()
		}
	}
	checks := []doctor.Check{
		doctor.Postgres(open, redactURL(a.cfg.DatabaseURL)),
		doctor.Clock(open, time.Now, 2*time.Second, time.Minute),
		// An attachment is written to a temporary file and then renamed: it needs its
		// size twice over only while the temporary file exists, once after.
		doctor.BlobDir(a.cfg.DataDir, uint64(2*a.cfg.MaxFileSize), 1<<30),
		a.blobStoreCheck(),
	}
	checks = append(checks, a.clamdCheck())
	checks = append(checks, a.oauthChecks()...)
	for _, raw := range a.cfg.IMAP.Mailboxes {
		checks = append(checks, a.imapCheck(raw))
	}
	if a.cfg.Outbox.SMTP != "" {
		checks = append(checks, a.smtpCheck())
	}
	if s := a.cfg.Slack; s.BotToken != "" {
		checks = append(checks, doctor.SlackCheck(doctor.Slack{BotToken: s.BotToken, AppToken: s.AppToken,
			Scopes: slack.BotScopes, AppScope: slack.AppScope, APIURL: s.APIURL}))
	}
	if d := a.cfg.Discord; d.Token != "" {
		api := ""
		if d.APIURL != "" {
			api = strings.TrimSuffix(d.APIURL, "/") + "/api/v9"
		}
		checks = append(checks, doctor.DiscordCheck(doctor.Discord{Token: d.Token, APIURL: api}))
	}
	return checks, cleanup
}

// clamdCheck checks the malware scanner the write path would use.
func (a *app) clamdCheck() doctor.Check {
	if a.cfg.Clamd == "" {
		return doctor.ClamdOff()
	}
	c, err := clamav.Parse(a.cfg.Clamd)
	if err != nil {
		return configProblem("clamd", fmt.Errorf("--clamd: %w", err))
	}
	return doctor.Clamd(c, time.Now(), doctor.ClamdMaxAge)
}

// smtpCheck checks the outbox's SMTP server as the worker would reach it.
func (a *app) smtpCheck() doctor.Check {
	d, err := a.smtpDialer()
	if err != nil {
		return configProblem("smtp", err)
	}
	return doctor.SMTP(d)
}

// imapCheck checks a --imap mailbox as the poller reaches it. The filing folders are
// not checked: the poller creates them.
func (a *app) imapCheck(raw string) doctor.Check {
	m, err := a.mailbox(raw)
	if err != nil {
		return configProblem("imap", fmt.Errorf("--imap: %w", err))
	}
	return doctor.IMAP(doctor.Mailbox{Name: m.String(), Folder: m.Name,
		Connect: func(ctx context.Context) (*imapclient.Client, error) { return m.Connect(ctx, nil) }})
}

// configProblem is a check that fails with a configuration error found while building it.
func configProblem(name string, err error) doctor.Check {
	return doctor.Check{Name: name, Run: func(context.Context) (string, error) { return "", err }}
}

var _ doctor.Database = (*postgres.Store)(nil)
