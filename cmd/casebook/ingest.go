package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gabriel-vasile/mimetype"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/postgres"
	"github.com/casebookhq/casebook/ingest"
	"github.com/casebookhq/casebook/ingest/mail"
	"github.com/casebookhq/casebook/ingest/senderauth"
)

// MailConfig is the email channel's part of Config: the limits on one message. The
// attachment limit is --max-file-size.
type MailConfig struct {
	MaxMessageSize int64
	MaxParts       int
	MaxDepth       int
	MaxHeaderBytes int64
	// TrustedAuthservIDs, comma-separated, are the receiving servers whose
	// Authentication-Results casebook believes.
	TrustedAuthservIDs string
	// DNSResolver is HOST:PORT of the DNS server for DKIM and DMARC lookups; "" is
	// the system's.
	DNSResolver string
	// SenderAuth is strict or lenient (ingest.SenderAuth).
	SenderAuth string
}

func (c *Config) mailFlags(fs *flag.FlagSet) {
	fs.Int64Var(&c.Mail.MaxMessageSize, "max-message-size", mail.DefaultMaxMessageSize, "largest mail in bytes; larger mail is quarantined")
	fs.IntVar(&c.Mail.MaxParts, "max-mime-parts", mail.DefaultMaxParts, "most MIME parts in one mail")
	fs.IntVar(&c.Mail.MaxDepth, "max-mime-depth", mail.DefaultMaxDepth, "deepest nesting of MIME multiparts")
	fs.Int64Var(&c.Mail.MaxHeaderBytes, "max-header-size", mail.DefaultMaxHeaderBytes, "largest mail header block in bytes, the top one and each MIME part's")
	fs.StringVar(&c.Mail.TrustedAuthservIDs, "trusted-authserv-id", "", "comma-separated authserv-ids whose Authentication-Results are believed, e.g. mx.google.com ("+senderauth.MicrosoftID+" for Microsoft 365, *.messagingengine.com for Fastmail)")
	fs.StringVar(&c.Mail.DNSResolver, "dns-resolver", "", "HOST:PORT of the DNS server for DKIM and DMARC lookups (default: the system's)")
	fs.StringVar(&c.Mail.SenderAuth, "sender-auth", string(ingest.Strict), "strict: the subject rule needs a sender that passes DMARC; lenient: it also takes one with no evidence either way")
}

func (c *Config) mailLimits() (mail.Limits, error) {
	if c.Mail.MaxMessageSize <= 0 || c.Mail.MaxParts <= 0 || c.Mail.MaxDepth <= 0 || c.Mail.MaxHeaderBytes <= 0 {
		return mail.Limits{}, errors.New("--max-message-size, --max-mime-parts, --max-mime-depth and --max-header-size must be positive")
	}
	return mail.Limits{
		MaxMessageSize:    c.Mail.MaxMessageSize,
		MaxAttachmentSize: c.MaxFileSize,
		MaxParts:          c.Mail.MaxParts,
		MaxDepth:          c.Mail.MaxDepth,
		MaxHeaderBytes:    c.Mail.MaxHeaderBytes,
	}, nil
}

// processorOptions builds the email channel's settings: reply tokens are checked when
// there is a reply address (--reply-address, or --mail-from's) and a key to check them
// with. A dry run creates no key: without one no token can have been sent.
func (a *app) processorOptions(ctx context.Context, dryRun bool) (ingest.ProcessorOptions, error) {
	lim, err := a.cfg.mailLimits()
	if err != nil {
		return ingest.ProcessorOptions{}, err
	}
	policy, err := ingest.ParseSenderAuth(a.cfg.Mail.SenderAuth)
	if err != nil {
		return ingest.ProcessorOptions{}, fmt.Errorf("--sender-auth: %w", err)
	}
	opts := ingest.ProcessorOptions{ReplyAddress: a.replyAddress(), Limits: lim, Logger: a.log, SenderAuth: policy,
		Verifier: senderauth.New(senderauth.Options{
			TrustedIDs:     splitList(a.cfg.Mail.TrustedAuthservIDs),
			Resolver:       senderauth.NewResolver(a.cfg.Mail.DNSResolver),
			MaxHeaderBytes: lim.MaxHeaderBytes,
			Logger:         a.log,
		}),
	}
	if opts.ReplyAddress != "" {
		opts.Tokens, err = a.tokenSigner(ctx, !dryRun)
		if err != nil && !(dryRun && errors.Is(err, casebook.ErrNotFound)) {
			return ingest.ProcessorOptions{}, err
		}
	}
	return opts, nil
}

var _ ingest.ProcessorStore = (*postgres.Store)(nil)

// processor builds the email channel's processor, which the IMAP poller and
// `casebook ingest` feed.
func (a *app) processor(ctx context.Context) (*ingest.MailProcessor, error) {
	opts, err := a.processorOptions(ctx, false)
	if err != nil {
		return nil, err
	}
	st, svc, bl, err := a.core(ctx)
	if err != nil {
		return nil, err
	}
	return ingest.NewProcessor(svc, st, bl, opts), nil
}

// dryRunProcessor runs the whole path, reads included, over a store and a blob store
// that write nothing: what it reports is what a real run would do.
func (a *app) dryRunProcessor(ctx context.Context) (*ingest.MailProcessor, error) {
	opts, err := a.processorOptions(ctx, true)
	if err != nil {
		return nil, err
	}
	st, err := a.store(ctx)
	if err != nil {
		return nil, err
	}
	dst, blobs := dryRunStore{st}, dryRunBlobs{}
	svc := casebook.NewService(dst, blobs, casebook.Options{
		Refs:            a.refs(),
		MaxFileSize:     a.cfg.MaxFileSize,
		MessageIDDomain: a.cfg.MailDomain,
		Logger:          a.log,
		AllowedTypes:    a.cfg.allowedTypes(),
	})
	return ingest.NewProcessor(svc, dst, blobs, opts), nil
}

// dryRunStore reads through to PostgreSQL and drops every write.
type dryRunStore struct{ *postgres.Store }

// CommitUpdate finds a replay as the commit would: a mail read once has its id only
// once it is read, and the write path leaves the check to the commit then.
func (s dryRunStore) CommitUpdate(ctx context.Context, u casebook.NewUpdate) (int64, error) {
	_, err := s.UpdateIDByExternalID(ctx, u.Source, u.ExternalID)
	switch {
	case err == nil:
		return 0, fmt.Errorf("commit update: %w", casebook.ErrDuplicate)
	case errors.Is(err, casebook.ErrNotFound):
		return 0, nil
	}
	return 0, err
}

func (dryRunStore) AddQuarantine(context.Context, string, string, string, casebook.Update) (int64, error) {
	return 0, nil
}

func (dryRunStore) SaveCheckpoint(context.Context, casebook.Checkpoint) error { return nil }

// dryRunBlobs measures what it is given and keeps none of it.
type dryRunBlobs struct{}

func (dryRunBlobs) Put(ctx context.Context, r io.Reader, limit int64) (casebook.StoredBlob, error) {
	h := sha256.New()
	head := make([]byte, 3072)
	k, err := io.ReadFull(r, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return casebook.StoredBlob{}, err
	}
	h.Write(head[:k])
	n, err := io.Copy(h, io.LimitReader(r, limit+1-int64(k)))
	if err != nil {
		return casebook.StoredBlob{}, err
	}
	if n += int64(k); n > limit {
		return casebook.StoredBlob{}, fmt.Errorf("blob put: %w (%d bytes)", casebook.ErrTooLarge, limit)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	return casebook.StoredBlob{Key: sum, SHA256: sum, Size: n, ContentType: mimetype.Detect(head[:k]).String()}, nil
}

// ingestLine is the JSON line `casebook ingest --json` prints for each file.
type ingestLine struct {
	File        string             `json:"file"`
	MessageID   string             `json:"message_id"`
	From        string             `json:"from"`
	Subject     string             `json:"subject"`
	Case        *string            `json:"case"`
	MatchedBy   *string            `json:"matched_by"`
	Outcome     string             `json:"outcome"`
	ReasonCode  string             `json:"reason_code"`
	Reason      string             `json:"reason"`
	SenderAuth  senderauth.Verdict `json:"sender_auth"`
	Attachments []mail.Attachment  `json:"attachments"`
}

func outcome(r ingest.Report) string {
	switch {
	case r.Disposition == ingest.Processed && r.Duplicate:
		return "duplicate"
	case r.Disposition == ingest.Processed:
		return "add"
	case r.Disposition == ingest.Ignored:
		return "ignore"
	}
	return "quarantine"
}

// verdictText prints a verdict as "pass by mx.google.com dmarc for acme.example".
func verdictText(v senderauth.Verdict) string {
	s := string(v.Result)
	if v.Method != "" {
		s += " by " + v.Method
	}
	if v.Domain != "" {
		s += " for " + v.Domain
	}
	return s
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func ingestCommand() command {
	var dryRun bool
	return command{
		usage: "[--dry-run] [--json] FILE.eml… | --mailbox NAME [--since 2026-01-01]",
		help:  "run mail files through the email channel: add each to its case, or quarantine or ignore it",
		flags: func(fs *flag.FlagSet, a *app) {
			fs.BoolVar(&dryRun, "dry-run", false, "write nothing (the database is only read); print what would happen")
			a.cfg.mailFlags(fs)
			a.cfg.backfillFlags(fs)
		},
		run: func(ctx context.Context, a *app, args []string) error {
			if a.cfg.Backfill.Mailbox != "" {
				return a.backfill(ctx, args, dryRun)
			}
			if len(args) == 0 {
				return fmt.Errorf("%w: name at least one .eml file", errUsage)
			}
			var p *ingest.MailProcessor
			var err error
			if dryRun {
				p, err = a.dryRunProcessor(ctx)
			} else {
				p, err = a.processor(ctx)
			}
			if err != nil {
				return err
			}
			for _, path := range args {
				rep, err := ingestFile(ctx, p, path)
				if err != nil {
					return err
				}
				line := ingestLine{
					File: path, MessageID: rep.MessageID, From: rep.From, Subject: rep.Subject,
					Case: nonEmpty(rep.Case), MatchedBy: nonEmpty(rep.MatchedBy), Outcome: outcome(rep), ReasonCode: string(rep.Code), Reason: rep.Reason,
					SenderAuth: rep.SenderAuth, Attachments: rep.Attachments,
				}
				if line.Attachments == nil {
					line.Attachments = []mail.Attachment{}
				}
				human := fmt.Sprintf("%s: %s", path, line.Outcome)
				if rep.Case != "" {
					human += " " + rep.Case
				}
				if rep.MatchedBy != "" {
					human += " (" + rep.MatchedBy + ")"
				}
				if rep.Reason != "" {
					human += ": " + rep.Reason
				}
				if n := len(rep.Attachments); n > 0 {
					human += fmt.Sprintf(", %d attachment(s)", n)
				}
				if v := rep.SenderAuth; v.Result != "" {
					human += fmt.Sprintf(" [sender %s]", verdictText(v))
				}
				if err := a.print(line, human); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

func ingestFile(ctx context.Context, p *ingest.MailProcessor, path string) (ingest.Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return ingest.Report{}, err
	}
	defer f.Close()
	rep, err := p.Handle(ctx, ingest.Location{}, f)
	if err != nil {
		return rep, fmt.Errorf("%s: %w", path, err)
	}
	return rep, nil
}

// caseArg reads --case for commands that need one.
func (a *app) caseArg(s string) (int64, error) {
	if strings.TrimSpace(s) == "" {
		return 0, fmt.Errorf("%w: --case is required, like %s", errUsage, a.refs().Format(123))
	}
	return a.refs().Parse(s)
}
