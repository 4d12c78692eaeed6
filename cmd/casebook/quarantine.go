package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"casebook/casebook/postgres"
	"casebook/ingest/mail"
	"casebook/ingest/senderauth"
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
			items, err := st.Quarantine(ctx, postgres.QuarantineFilter{All: all})
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
	postgres.QuarantineItem
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
				raw, err := a.openRaw(ctx, it.RawBlob)
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
	var caseRef string
	return command{
		usage: "ID --case CASE-000123",
		help:  "add a quarantined mail to a case through the write path (you vouch for the sender)",
		flags: func(fs *flag.FlagSet, a *app) {
			fs.StringVar(&caseRef, "case", "", "the case to add the mail to")
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
			it, err := a.st.QuarantineByID(ctx, id)
			if err != nil {
				return err
			}
			if it.Status == "dropped" {
				return fmt.Errorf("quarantine %d was dropped", id)
			}
			if it.RawBlob == "" {
				return fmt.Errorf("quarantine %d: the raw message was not kept (over the size limit); it stays in the mailbox's Casebook/Quarantine folder", id)
			}
			raw, err := a.openRaw(ctx, it.RawBlob)
			if err != nil {
				return err
			}
			defer raw.Close()
			out, err := p.Release(ctx, raw, number, it.RawBlob)
			if err != nil {
				return err
			}
			var updateID *int64
			if out.UpdateID != 0 {
				updateID = &out.UpdateID
			}
			if err := a.st.ResolveQuarantine(ctx, id, "released", updateID); err != nil {
				return err
			}
			ref := a.refs().Format(number)
			return a.print(map[string]any{"id": id, "case": ref, "result": out.Result, "update_id": out.UpdateID},
				fmt.Sprintf("quarantine %d released onto %s (%s)", id, ref, out.Result))
		},
	}
}

func quarantineDropCommand() command {
	return command{
		usage: "ID",
		help:  "close a quarantined mail without adding it to any case",
		run: func(ctx context.Context, a *app, args []string) error {
			id, err := quarantineID(args)
			if err != nil {
				return err
			}
			st, err := a.store(ctx)
			if err != nil {
				return err
			}
			if err := st.ResolveQuarantine(ctx, id, "dropped", nil); err != nil {
				return err
			}
			return a.print(map[string]any{"id": id, "status": "dropped"}, fmt.Sprintf("quarantine %d dropped", id))
		},
	}
}

// openRaw opens a kept raw message for reading twice (parse, then stream). A blob
// the store cannot seek in (encrypted, or on S3) is copied to a temporary file first,
// removed on Close.
func (a *app) openRaw(ctx context.Context, key string) (io.ReadSeekCloser, error) {
	bl, err := a.blobStore(ctx)
	if err != nil {
		return nil, err
	}
	rc, err := bl.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	if rs, ok := rc.(io.ReadSeekCloser); ok {
		return rs, nil
	}
	defer rc.Close()
	tmp, err := os.CreateTemp("", "casebook-raw-*")
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", key, err)
	}
	os.Remove(tmp.Name()) // gone from the directory at once; the open file stays readable
	if _, err := io.Copy(tmp, rc); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("blob %s: %w", key, err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		tmp.Close()
		return nil, err
	}
	return tmp, nil
}
