package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/ingest"
	"github.com/casebookhq/casebook/ingest/mail"
	"github.com/casebookhq/casebook/ingest/senderauth"
)

func quarantineID(args []string) (int64, error) {
	if len(args) != 1 {
		return 0, fmt.Errorf("%w: name one quarantine id", errUsage)
	}
	id, err := strconv.ParseInt(strings.TrimPrefix(args[0], "#"), 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%w: %q is not a quarantine id", errUsage, args[0])
	}
	return id, nil
}

func quarantineListCommand() command {
	var all bool
	return command{
		usage: "[--all]",
		help:  "list mail waiting in quarantine, oldest first",
		flags: func(fs *flag.FlagSet, _ *app) {
			fs.BoolVar(&all, "all", false, "also list released, dropped and ignored mail")
		},
		run: func(ctx context.Context, a *app, _ []string) error {
			st, err := a.store(ctx)
			if err != nil {
				return err
			}
			items, err := st.Quarantine(ctx, casebook.QuarantineFilter{All: all})
			if err != nil {
				return err
			}
			for _, it := range items {
				human := fmt.Sprintf("%-6d %s  %-11s %-8s %-30s %q\n       %s", it.ID, it.CreatedAt.Format("2006-01-02 15:04"),
					it.Kind, it.Status, it.Sender, it.Subject, it.Reason)
				if err := a.print(it, human); err != nil {
					return err
				}
			}
			if len(items) == 0 && !a.cfg.JSON {
				fmt.Fprintln(a.stdout, "quarantine is empty")
			}
			return nil
		},
	}
}

// quarantineView is a quarantine row with the attachments its raw message holds.
type quarantineView struct {
	casebook.QuarantineItem
	// SenderAuth is the sender verdict the mail got, kept in its meta; nil for mail
	// quarantined before verdicts were kept or without one (a poison message).
	SenderAuth  *senderauth.Verdict `json:"sender_auth"`
	Attachments []mail.Attachment   `json:"attachments"`
}

// storedVerdict reads the verdict the mail processor kept in a row's meta.
func storedVerdict(meta map[string]string) *senderauth.Verdict {
	r, ok := meta["sender_auth"]
	if !ok {
		return nil
	}
	return &senderauth.Verdict{Result: senderauth.Result(r), Method: meta["sender_auth_method"], Domain: meta["sender_auth_domain"]}
}

func quarantineShowCommand() command {
	return command{
		usage: "ID",
		help:  "show one quarantined mail: why, from whom, its text and its attachments",
		flags: func(fs *flag.FlagSet, a *app) { a.cfg.mailFlags(fs) },
		run: func(ctx context.Context, a *app, args []string) error {
			id, err := quarantineID(args)
			if err != nil {
				return err
			}
			st, err := a.store(ctx)
			if err != nil {
				return err
			}
			it, err := st.QuarantineByID(ctx, id)
			if err != nil {
				return err
			}
			if err := cliAudit(ctx, st, nil, "quarantine_view", fmt.Sprintf("quarantine:%d", it.ID), "success"); err != nil {
				return err
			}
			v := quarantineView{QuarantineItem: it, SenderAuth: storedVerdict(it.Meta), Attachments: []mail.Attachment{}}
			if it.RawBlob != "" {
				lim, err := a.cfg.mailLimits()
				if err != nil {
					return err
				}
				bl, err := a.blobStore(ctx)
				if err != nil {
					return err
				}
				// One pass over the message: no copy is needed even when the store
				// cannot seek (encrypted, or on S3).
				raw, err := bl.Open(ctx, it.RawBlob)
				if err != nil {
					return err
				}
				defer raw.Close()
				// A malformed message lists what could be read before the fault.
				if m, err := mail.Parse(raw, lim); m != nil {
					v.Attachments = append(v.Attachments, m.Attachments...)
					if err != nil && !errors.Is(err, mail.ErrMalformed) && !errors.Is(err, mail.ErrLimit) {
						return err
					}
				}
			}
			var b strings.Builder
			fmt.Fprintf(&b, "quarantine %d (%s, %s)\nreason:     %s\n", it.ID, it.Kind, it.Status, it.Reason)
			if it.ReasonCode != "" {
				fmt.Fprintf(&b, "code:       %s\n", it.ReasonCode)
			}
			fmt.Fprintf(&b, "from:       %s\n", it.Sender)
			if v.SenderAuth != nil {
				fmt.Fprintf(&b, "sender:     %s\n", verdictText(*v.SenderAuth))
			}
			fmt.Fprintf(&b, "subject:    %s\nmessage-id: %s\nreceived:   %s\n", it.Subject, it.MessageID, it.CreatedAt.Format("2006-01-02 15:04:05 MST"))
			if it.RawBlob == "" {
				b.WriteString("raw message: not kept (over the size limit); see the mailbox's Casebook/Quarantine folder\n")
			}
			for _, at := range v.Attachments {
				fmt.Fprintf(&b, "attachment: %s (%s, %d bytes, sha256 %s)\n", at.Filename, at.ContentType, at.Size, at.SHA256)
			}
			b.WriteString("\n" + it.Body)
			return a.print(v, b.String())
		},
	}
}

func quarantineReleaseCommand() command {
	var caseRef, as string
	return command{
		usage: "ID --case CASE-000123 [--as STAFF_EMAIL]",
		help:  "add a quarantined mail to a case through the write path (you vouch for the sender)",
		flags: func(fs *flag.FlagSet, a *app) {
			fs.StringVar(&caseRef, "case", "", "the case to add the mail to")
			fs.StringVar(&as, "as", "", "staff member who vouches for the sender (recorded; the OS user otherwise)")
			a.cfg.mailFlags(fs)
		},
		run: func(ctx context.Context, a *app, args []string) error {
			id, err := quarantineID(args)
			if err != nil {
				return err
			}
			number, err := a.caseArg(caseRef)
			if err != nil {
				return err
			}
			p, err := a.processor(ctx)
			if err != nil {
				return err
			}
			bl, err := a.blobStore(ctx)
			if err != nil {
				return err
			}
			d, err := a.desk(ctx, ingest.Releaser{Raw: bl, Processor: p})
			if err != nil {
				return err
			}
			by, err := a.cliActor(ctx, as)
			if err != nil {
				return err
			}
			out, err := d.ReleaseQuarantine(ctx, by, id, number)
			if err != nil {
				return err
			}
			return a.print(out, fmt.Sprintf("quarantine %d released onto %s (%s)", id, out.Case, out.Result))
		},
	}
}

func quarantineDropCommand() command {
	var as string
	return command{
		usage: "ID [--as STAFF_EMAIL]",
		help:  "close a quarantined mail without adding it to any case",
		flags: func(fs *flag.FlagSet, _ *app) {
			fs.StringVar(&as, "as", "", "staff member who decides (recorded; the OS user otherwise)")
		},
		run: func(ctx context.Context, a *app, args []string) error {
			id, err := quarantineID(args)
			if err != nil {
				return err
			}
			d, err := a.desk(ctx, nil)
			if err != nil {
				return err
			}
			by, err := a.cliActor(ctx, as)
			if err != nil {
				return err
			}
			if err := d.DropQuarantine(ctx, by, id); err != nil {
				return err
			}
			return a.print(map[string]any{"id": id, "status": casebook.QuarantineDropped}, fmt.Sprintf("quarantine %d dropped", id))
		},
	}
}

// cliActor is the operator at the shell, acting as the staff member email names when
// one is named.
func (a *app) cliActor(ctx context.Context, email string) (casebook.Actor, error) {
	by := casebook.Actor{IP: "cli", OSUser: osUser()}
	if email == "" {
		return by, nil
	}
	st, err := a.store(ctx)
	if err != nil {
		return by, err
	}
	u, err := st.UserByEmail(ctx, email)
	if err != nil {
		return by, err
	}
	by.User = &u
	return by, nil
}

// desk builds the staff use cases over the store; r reads quarantined mail back
// for a release (nil where the command releases nothing).
func (a *app) desk(ctx context.Context, r casebook.Releaser) (*casebook.Desk, error) {
	st, svc, _, err := a.core(ctx)
	if err != nil {
		return nil, err
	}
	return casebook.NewDesk(st, svc, casebook.DeskOptions{
		Refs:            a.refs(),
		MessageIDDomain: a.cfg.MailDomain,
		Releaser:        r,
		Logger:          a.log,
	}), nil
}
