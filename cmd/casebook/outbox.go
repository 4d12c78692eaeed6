package main

import (
	"context"
	"flag"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/outbox"
	"github.com/casebookhq/casebook/casebook/postgres"
)

// OutboxConfig holds the outbound mail settings. The reply address, token key and base
// URL are shared with the email channel and the web page (Config).
type OutboxConfig struct {
	// SMTP is the submission server URL; empty turns the outbox worker off.
	SMTP string
	// SMTPPassword, when set, replaces the password in SMTP.
	SMTPPassword string
	// From is the sender of every mail, e.g. "Acme Support <support@example.com>".
	From string
	// RateLimit caps the mails about one case to one recipient per hour; 0: no cap.
	RateLimit int
	// MaxAttempts is how many tries a mail gets before it is marked failed.
	MaxAttempts int
}

// outboxFlags registers the outbox worker's flags, for the commands that serve.
func (c *Config) outboxFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Outbox.SMTP, "smtp", "", "SMTP server for outbound mail: smtps://USER:PASS@HOST:465 (TLS), smtp://USER:PASS@HOST:587 (STARTTLS, required) or smtp://127.0.0.1:25?tls=none (loopback only); ?password_file=PATH; ?auth=xoauth2 with the mailbox URL's OAuth keys")
	fs.StringVar(&c.Outbox.SMTPPassword, "smtp-password", "", "SMTP password, instead of the one in --smtp")
	fs.StringVar(&c.Outbox.From, "mail-from", "", `sender of casebook's mail, e.g. "Acme Support <support@example.com>"`)
	fs.IntVar(&c.Outbox.RateLimit, "mail-rate-limit", 20, "most mails about one case to one recipient per hour; 0 for no limit")
	fs.IntVar(&c.Outbox.MaxAttempts, "mail-max-attempts", 15, "tries before a mail that keeps failing temporarily is marked failed (backoff doubles from 30s up to 1h)")
}

// outboxComponents runs the outbox worker when --smtp is set.
func (a *app) outboxComponents(ctx context.Context) ([]component, error) {
	if a.cfg.Outbox.SMTP == "" {
		return nil, nil
	}
	w, err := a.outboxWorker(ctx)
	if err != nil {
		return nil, err
	}
	return []component{{name: "outbox", run: w.Run}}, nil
}

func (a *app) outboxWorker(ctx context.Context) (*outbox.Worker, error) {
	m := a.cfg.Outbox
	d, err := a.smtpDialer()
	if err != nil {
		return nil, err
	}
	signer, err := a.tokenSigner(ctx, true)
	if err != nil {
		return nil, err
	}
	st, err := a.store(ctx)
	if err != nil {
		return nil, err
	}
	perHour := m.RateLimit
	if perHour <= 0 {
		perHour = -1
	}
	return outbox.New(st, d, outbox.Options{
		From:         m.From,
		ReplyAddress: a.replyAddress(),
		Signer:       signer,
		BaseURL:      a.cfg.BaseURL,
		PerHour:      perHour,
		MaxAttempts:  m.MaxAttempts,
		Logger:       a.log.With("component", "outbox"),
	})
}

// openedCaseMail is the case email that tells the requester their case was opened;
// `case open` queues it in the case's transaction.
func (a *app) openedCaseMail(c casebook.Case) casebook.OutboxMail {
	return casebook.CaseMail{
		Case:      c,
		Ref:       a.refs().Format(c.Number),
		Event:     casebook.CaseOpened,
		MessageID: casebook.NewMessageID(a.cfg.MailDomain),
	}.OutboxMail()
}

func caseReplyCommand() command {
	var body, as string
	return command{
		usage: "CASE-000123 --body TEXT [--as STAFF_EMAIL]",
		help:  "post a staff reply on a case and mail it to the requester",
		flags: func(fs *flag.FlagSet, _ *app) {
			fs.StringVar(&body, "body", "", "the reply")
			fs.StringVar(&as, "as", "", "staff member who writes (the case owner by default)")
		},
		run: func(ctx context.Context, a *app, args []string) error {
			n, err := a.caseNumber(args)
			if err != nil {
				return err
			}
			if strings.TrimSpace(body) == "" {
				return fmt.Errorf("%w: --body is required", errUsage)
			}
			st, err := a.store(ctx)
			if err != nil {
				return err
			}
			if as == "" {
				c, err := st.CaseByNumber(ctx, n)
				if err != nil {
					return err
				}
				as = c.Owner
			}
			by, err := a.cliActor(ctx, as)
			if err != nil {
				return err
			}
			d, err := a.desk(ctx, nil)
			if err != nil {
				return err
			}
			v, err := d.Reply(ctx, by, n, body, nil)
			if err != nil {
				return err
			}
			return a.print(v, fmt.Sprintf("reply added to %s; mail to %s queued", v.Case, v.To))
		},
	}
}

func outboxListCommand() command {
	var failed bool
	var status string
	var limit int
	return command{
		usage: "[--failed | --status S] [--limit N]",
		help:  "list queued and sent mail, newest first, with the last error (passwords are never shown)",
		flags: func(fs *flag.FlagSet, _ *app) {
			fs.BoolVar(&failed, "failed", false, "only mail that failed for good")
			fs.StringVar(&status, "status", "", "only mail with this status (pending, sent, failed, suppressed)")
			fs.IntVar(&limit, "limit", 100, "at most this many rows")
		},
		run: func(ctx context.Context, a *app, _ []string) error {
			f := postgres.OutboxFilter{Status: casebook.OutboxStatus(status)}
			if failed {
				f.Status = casebook.OutboxFailed
			}
			switch f.Status {
			case "", casebook.OutboxPending, casebook.OutboxSent, casebook.OutboxFailed, casebook.OutboxSuppressed:
			default:
				return fmt.Errorf("%w: unknown status %q (pending, sent, failed, suppressed)", errUsage, status)
			}
			st, err := a.store(ctx)
			if err != nil {
				return err
			}
			for left := limit; left > 0; {
				f.Limit = min(left, 1000)
				es, err := st.OutboxEntries(ctx, f)
				if err != nil {
					return err
				}
				for _, e := range es {
					ref := ""
					if e.CaseNumber != 0 {
						ref = a.refs().Format(e.CaseNumber)
					}
					human := fmt.Sprintf("%-6d %-10s %-18s %-11s %-30s tries %d  %s", e.ID, e.Status, e.Kind, ref, e.Recipient,
						e.Attempts, e.CreatedAt.Local().Format(time.DateTime))
					if e.LastError != "" {
						human += "\n       " + e.LastError
					}
					if err := a.print(e, human); err != nil {
						return err
					}
				}
				if len(es) < f.Limit {
					break
				}
				left -= len(es)
				f.Before = es[len(es)-1].ID
			}
			return nil
		},
	}
}

// replyAddress is where customers answer case mail: --reply-address, or else the
// address of --mail-from (mail comes from the support address and goes back to it).
func (a *app) replyAddress() string {
	if a.cfg.ReplyAddress != "" {
		return a.cfg.ReplyAddress
	}
	if f, err := mail.ParseAddress(a.cfg.Outbox.From); err == nil {
		return f.Address
	}
	return ""
}

// tokenSigner signs and checks reply tokens with --token-key when one is given, else
// with the key kept in the database, generated at first start (with create) and
// replaced by `casebook token-key rotate`, whose older keys still verify. Without
// create and without a stored key it fails with casebook.ErrNotFound.
func (a *app) tokenSigner(ctx context.Context, create bool) (*casebook.TokenSigner, error) {
	if a.cfg.TokenKey != "" {
		s, err := casebook.NewTokenSigner([]byte(a.cfg.TokenKey))
		if err != nil {
			return nil, fmt.Errorf("--token-key: %w", err)
		}
		return s.WithTTL(a.cfg.ReplyTokenTTL), nil
	}
	st, err := a.store(ctx)
	if err != nil {
		return nil, err
	}
	key, older, err := st.ReplyTokenKeys(ctx, create)
	if err != nil {
		return nil, err
	}
	s, err := casebook.NewTokenSigner(key, older...)
	if err != nil {
		return nil, err
	}
	return s.WithTTL(a.cfg.ReplyTokenTTL), nil
}

func tokenKeyRotateCommand() command {
	return command{
		help: "sign reply tokens with a new key kept in the database; replies to mail signed with the old keys still reach their case",
		run: func(ctx context.Context, a *app, _ []string) error {
			if a.cfg.TokenKey != "" {
				return fmt.Errorf("%w: --token-key (CASEBOOK_TOKEN_KEY) is set, and a key given wins over the database's: rotate it where it is kept, or unset it", errUsage)
			}
			st, err := a.store(ctx)
			if err != nil {
				return err
			}
			retired, err := st.RotateReplyTokenKey(ctx)
			if err != nil {
				return err
			}
			if err := cliAudit(ctx, st, nil, "token_key_rotate", "app_key:reply-token", "success"); err != nil {
				return err
			}
			out := struct {
				Rotated bool `json:"rotated"`
				Retired int  `json:"retired_keys"`
			}{true, retired}
			return a.print(out, fmt.Sprintf("reply tokens are signed with a new key; %d older key(s) still verify replies to mail already sent\nrestart the instances so they all sign with it", retired))
		},
	}
}
