package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/failpoint"
	"github.com/casebookhq/casebook/ingest/mail"
	"github.com/casebookhq/casebook/ingest/senderauth"
)

// ProcessorStore is what the processor needs from storage beyond casebook.Service.
type ProcessorStore interface {
	// CaseByNumber finds a case (ErrCaseNotFound).
	CaseByNumber(ctx context.Context, number int64) (casebook.Case, error)
	// CaseNumbersByMessageIDs returns the cases whose outgoing mail carried one of
	// ids (with angle brackets), in the order given.
	CaseNumbersByMessageIDs(ctx context.Context, ids []string) ([]int64, error)
	// AddQuarantine records a refused ("quarantined") or "ignored" message with its
	// reason code and sentence, and advances u.Checkpoint in one transaction; a second
	// record of the same (source, external id) keeps the first.
	AddQuarantine(ctx context.Context, kind, code, reason string, u casebook.Update) (int64, error)
	// UserByIdentity finds the user an address belongs to (ErrUserNotFound), to
	// hold staff mail to a stricter rule.
	UserByIdentity(ctx context.Context, kind casebook.IdentityKind, value string) (casebook.User, error)
	// SaveCheckpoint advances a channel position on its own.
	SaveCheckpoint(ctx context.Context, c casebook.Checkpoint) error
}

// RawStore keeps whole messages as they arrived.
type RawStore interface {
	Put(ctx context.Context, r io.Reader, limit int64) (casebook.StoredBlob, error)
}

// ProcessorOptions configure a MailProcessor.
type ProcessorOptions struct {
	// ReplyAddress is where customers reply (support@example.com); reply tokens ride
	// on its plus-address. Empty turns rule 1 (reply tokens) off.
	ReplyAddress string
	// Tokens checks reply tokens; nil turns rule 1 off.
	Tokens *casebook.TokenSigner
	// Limits bound each message; MaxAttachmentSize defaults to the service's cap.
	Limits mail.Limits
	// Verifier gives each mail its sender verdict; nil gives every mail none.
	Verifier Verifier
	// SenderAuth is how much the subject rule asks of the verdict [Strict].
	SenderAuth SenderAuth
	Logger     *slog.Logger
}

// Verifier gives a mail its sender verdict (senderauth.Verifier): Begin reads the
// header, and when the verdict needs the whole mail, the processor's one read of it
// hands it over.
type Verifier interface {
	Begin(ctx context.Context, raw io.ReadSeeker) *senderauth.Check
}

// MailProcessor is the Processor of the email channel: it handles one mail
// completely — parse, match to a case, add it through casebook.Service.AddUpdate or
// quarantine it — and commits the mailbox position with the outcome. It keeps no
// state between messages, so several may be handled at once; whoever does so must
// commit positions in UID order (a later UID's position must not land while an
// earlier one is still in flight).
type MailProcessor struct {
	svc   *casebook.Service
	st    ProcessorStore
	blobs RawStore
	opt   ProcessorOptions
	log   *slog.Logger
}

var _ Processor = (*MailProcessor)(nil)

// NewProcessor returns a MailProcessor that writes through svc and keeps raw messages in blobs.
func NewProcessor(svc *casebook.Service, st ProcessorStore, blobs RawStore, opts ProcessorOptions) *MailProcessor {
	if opts.Limits.MaxAttachmentSize <= 0 {
		opts.Limits.MaxAttachmentSize = svc.MaxFileSize()
	}
	opts.Limits = opts.Limits.WithDefaults()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.SenderAuth == "" {
		opts.SenderAuth = Strict
	}
	return &MailProcessor{svc: svc, st: st, blobs: blobs, opt: opts, log: opts.Logger}
}

// How a message was matched to its case, recorded in Update.Meta["matched_by"].
const (
	MatchedByToken   = "reply_token"
	MatchedByThread  = "thread"
	MatchedBySubject = "subject"
	MatchedByRelease = "quarantine_release"
)

// Report is what Handle found and did, for `casebook ingest` to print.
type Report struct {
	Result
	// Duplicate is set when the message had been added before.
	Duplicate  bool
	MessageID  string
	From       string
	Subject    string
	CaseNumber int64
	MatchedBy  string
	ExternalID string
	// Attachments are the files stored with an added mail, as the blob store measured
	// them; a mail not added has its files left undecoded and lists none.
	Attachments []mail.Attachment
	SenderAuth  senderauth.Verdict
}

// Process implements Processor: see Handle.
func (p *MailProcessor) Process(ctx context.Context, loc Location, raw io.ReadSeeker) (Result, error) {
	r, err := p.Handle(ctx, loc, raw)
	if err == nil {
		// Committed, not yet filed in its mailbox folder.
		failpoint.Reached("ingest.committed")
	}
	return r.Result, err
}

// Handle processes one message. A message that cannot be added (no case, unknown or
// closed case, sender not allowed, over a limit, malformed) is quarantined and an
// auto-reply or bounce ignored, each recorded with its reason together with the
// mailbox position; both are Results, not errors. An error means nothing was
// committed (the database or the blob store failed) and the message should be tried
// again. A panic is recovered and returned as an error, so the caller can count it
// against this message. loc.Mailbox "" means no mailbox: no checkpoint is written.
func (p *MailProcessor) Handle(ctx context.Context, loc Location, raw io.ReadSeeker) (rep Report, err error) {
	defer func() {
		if v := recover(); v != nil {
			p.log.ErrorContext(ctx, "panic while processing a message", "mailbox", loc.Mailbox, "uid", loc.UID,
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			rep, err = Report{}, fmt.Errorf("process message: panic: %v", v)
		}
	}()
	return p.handle(ctx, loc, raw)
}

func (p *MailProcessor) handle(ctx context.Context, loc Location, raw io.ReadSeeker) (Report, error) {
	// One read keeps the raw copy, computes the digest and reads the headers and the
	// text; the attachments are decoded only once the mail is to be added, as they
	// stream into the blob store, so a refused mail costs that read and no more.
	var msg *mail.Message
	var perr error
	check := p.beginVerdict(ctx, raw)
	k, err := p.keep(ctx, raw, check, func(r io.Reader) { msg, perr = mail.ReadText(r, p.opt.Limits) })
	if err != nil {
		return Report{}, err
	}
	// Waited for whatever the outcome, so that no check outlives the message.
	verdict := check.Verdict()
	failpoint.Reached("ingest.kept")
	if perr != nil && !isMessageProblem(perr) {
		return Report{}, fmt.Errorf("process message: %w", perr)
	}
	rep, u := p.prepare(loc, k, msg)
	if perr != nil {
		return p.refuse(ctx, loc, &rep, u, Quarantined, CodeOf(perr), perr.Error())
	}
	if msg.AutoReply != "" {
		return p.refuse(ctx, loc, &rep, u, Ignored, CodeAutoReply, "auto-reply or bounce: "+msg.AutoReply)
	}
	rep.SenderAuth = verdict
	u.Meta["sender_auth"] = string(rep.SenderAuth.Result)
	u.Meta["sender_auth_method"] = rep.SenderAuth.Method
	u.Meta["sender_auth_domain"] = rep.SenderAuth.Domain

	m, err := p.matcher().Match(ctx, msg)
	rep.CaseNumber, rep.MatchedBy = m.CaseNumber, m.By
	u.CaseNumber = m.CaseNumber
	u.ProvenRecipient = m.Proven
	u.Meta["matched_by"] = m.By
	if err != nil && !isMessageProblem(err) {
		return rep, fmt.Errorf("process message: %w", err)
	}
	if rep.SenderAuth.Result == senderauth.Fail {
		return p.refuse(ctx, loc, &rep, u, Quarantined, CodeSenderNotVerified, p.reason(ErrSenderNotVerified, msg, m, rep.SenderAuth))
	}
	if err != nil {
		return p.refuse(ctx, loc, &rep, u, Quarantined, CodeOf(err), p.reason(err, msg, m, rep.SenderAuth))
	}
	if err := p.checkSender(ctx, msg, m, rep.SenderAuth); err != nil {
		if isMessageProblem(err) {
			return p.refuse(ctx, loc, &rep, u, Quarantined, CodeOf(err), p.reason(err, msg, m, rep.SenderAuth))
		}
		return rep, fmt.Errorf("process message: %w", err)
	}
	u.Files = p.files(raw)
	out, err := p.svc.AddUpdate(ctx, u)
	if err != nil {
		if isMessageProblem(err) {
			return p.refuse(ctx, loc, &rep, u, Quarantined, CodeOf(err), p.reason(err, msg, m, rep.SenderAuth))
		}
		return rep, fmt.Errorf("process message: %w", err)
	}
	rep.Result = Result{Disposition: Processed, Case: p.svc.Refs().Format(m.CaseNumber)}
	for _, a := range out.Attachments {
		rep.Attachments = append(rep.Attachments, mail.Attachment{Filename: a.Filename, ContentType: a.ContentType,
			Inline: a.Inline, Size: a.Size, SHA256: a.SHA256})
	}
	if out.Result == casebook.ResultDuplicate {
		rep.Duplicate = true
		// A duplicate commits nothing, so the position must be saved on its own (the
		// same mail appended twice arrives under a second UID).
		if u.Checkpoint != nil {
			if err := p.st.SaveCheckpoint(ctx, *u.Checkpoint); err != nil {
				return rep, fmt.Errorf("process message: %w", err)
			}
		}
	}
	return rep, nil
}

// prepare fills the report and the update every outcome shares. The raw message is
// kept so a person can always see what arrived, whatever becomes of it (unless it is
// over the size limit).
func (p *MailProcessor) prepare(loc Location, k kept, msg *mail.Message) (Report, casebook.Update) {
	rep := Report{
		MessageID:  msg.MessageID,
		From:       msg.From.Address,
		Subject:    msg.Subject,
		ExternalID: ExternalID(k.digest, msg.MessageID),
	}
	u := casebook.Update{
		Source:     casebook.SourceEmail,
		ExternalID: rep.ExternalID,
		Author:     casebook.Author{Kind: casebook.IdentityEmail, Value: msg.From.Address, Name: msg.From.Name},
		Body:       msg.Reply,
		Meta: map[string]string{
			"message_id": msg.MessageID,
			"subject":    msg.Subject,
			"digest":     k.digest,
		},
	}
	if loc.Mailbox != "" {
		cp := CheckpointAt(loc)
		u.Checkpoint = &cp
		u.Meta["mailbox"] = loc.Mailbox
		u.Meta["uid"] = strconv.FormatUint(uint64(loc.UID), 10)
		u.Meta["uidvalidity"] = strconv.FormatUint(uint64(loc.UIDValidity), 10)
	}
	if k.rawBlob != "" {
		u.Meta["raw_blob"] = k.rawBlob
	}
	return rep, u
}

// Quarantine files the message at loc in quarantine with reason, without trying to
// add it, and commits loc's position with it. The poller calls it for a message
// whose handling failed again and again (a poison message), so it reads no more than
// it must: the header, and even that only if the parser does not fail on it.
func (p *MailProcessor) Quarantine(ctx context.Context, loc Location, raw io.ReadSeeker, reason string) (res Result, err error) {
	defer func() {
		if v := recover(); v != nil {
			p.log.ErrorContext(ctx, "panic while quarantining a message", "mailbox", loc.Mailbox, "uid", loc.UID,
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			res, err = Result{}, fmt.Errorf("quarantine message: panic: %v", v)
		}
	}()
	k, err := p.keep(ctx, raw, nil, nil)
	if err != nil {
		return Result{}, err
	}
	rep, u := p.prepare(loc, k, p.header(raw))
	rep, err = p.refuse(ctx, loc, &rep, u, Quarantined, CodeFailedRepeatedly, reason)
	return rep.Result, err
}

// header reads what it can of a message's header and text, recovering from a panic
// in the parser: a message that crashed it once will again.
func (p *MailProcessor) header(raw io.ReadSeeker) (msg *mail.Message) {
	defer func() {
		if recover() != nil {
			msg = &mail.Message{}
		}
	}()
	if _, err := raw.Seek(0, io.SeekStart); err != nil {
		return &mail.Message{}
	}
	msg, _ = mail.ReadText(raw, p.opt.Limits)
	return msg
}

func (p *MailProcessor) matcher() *Matcher {
	return &Matcher{ReplyAddress: p.opt.ReplyAddress, Tokens: p.opt.Tokens, Refs: p.svc.Refs(), Threads: p.st.CaseNumbersByMessageIDs}
}

// files streams the attachments from raw inside AddUpdate, each decoded once on its
// way into the blob store.
func (p *MailProcessor) files(raw io.ReadSeeker) casebook.FileSeq {
	return func(yield func(casebook.File) error) error {
		if _, err := raw.Seek(0, io.SeekStart); err != nil {
			return err
		}
		return mail.Attachments(raw, p.opt.Limits, func(a mail.Attachment, body io.Reader) error {
			return yield(casebook.File{Name: a.Filename, ContentType: a.DeclaredType, Inline: a.Inline, Body: body})
		})
	}
}

// refuse records a quarantined or ignored message with the mailbox position, and logs
// it once with its reason.
func (p *MailProcessor) refuse(ctx context.Context, loc Location, rep *Report, u casebook.Update, d Disposition, code Code, reason string) (Report, error) {
	u.Files = nil
	if _, err := p.st.AddQuarantine(ctx, string(d), string(code), reason, u); err != nil {
		return *rep, fmt.Errorf("process message: %w", err)
	}
	rep.Result = Result{Disposition: d, Code: code, Reason: reason}
	if u.CaseNumber > 0 {
		rep.Result.Case = p.svc.Refs().Format(u.CaseNumber)
	}
	p.log.InfoContext(ctx, "mail "+string(d), "reason_code", string(code), "reason", reason, "mailbox", loc.Mailbox, "uid", loc.UID,
		"external_id", u.ExternalID, "case", rep.Result.Case, "from", u.Author.Value)
	return *rep, nil
}

// reason words a refusal for the person who works the quarantine.
func (p *MailProcessor) reason(err error, msg *mail.Message, m Match, v senderauth.Verdict) string {
	ref := p.svc.Refs().Format(m.CaseNumber)
	var inf *casebook.InfectedError
	switch {
	case errors.Is(err, ErrSenderNotVerified) && v.Result == senderauth.Fail:
		return fmt.Sprintf("the sender %s failed authentication (%s for %s): the From address is forged, or the mail was changed on its way",
			msg.From.Address, v.Method, v.Domain)
	case errors.Is(err, ErrSenderNotVerified) && errors.Is(err, errStaffSender):
		return fmt.Sprintf("the sender %s is staff, and mail from staff must pass sender authentication (verdict %s); staff write through the web page or `casebook case reply`",
			msg.From.Address, v.Result)
	case errors.Is(err, ErrSenderNotVerified):
		return fmt.Sprintf("the subject names %s, but the sender %s could not be verified (verdict %s) and the subject rule needs a pass (--sender-auth strict)",
			ref, msg.From.Address, v.Result)
	case errors.Is(err, casebook.ErrTokenExpired):
		return fmt.Sprintf("the reply token names %s but has expired: the customer answered a case mail older than --reply-token-ttl", ref)
	case errors.Is(err, casebook.ErrFileTypeNotAllowed):
		return fmt.Sprintf("a file is a program, a script or a web page, which no channel accepts (%v)", err)
	case errors.As(err, &inf):
		return fmt.Sprintf("%s: %s found in %q", CodeMalware, inf.Signature, inf.File)
	case errors.Is(err, casebook.ErrUserDisabled):
		return fmt.Sprintf("the sender %s names %s, but their casebook account is disabled", msg.From.Address, ref)
	case errors.Is(err, casebook.ErrNoCaseRef):
		return "no case found: no valid reply token, no thread of ours, no case reference in the subject"
	case errors.Is(err, casebook.ErrNotAllowed) && m.Proven:
		return fmt.Sprintf("the %s names %s, but the sender %s is not a contact of the case's organisation", ruleName(m.By), ref, msg.From.Address)
	case errors.Is(err, casebook.ErrNotAllowed):
		return fmt.Sprintf("the subject names %s, but the sender %s is not a registered contact of the case's organisation", ref, msg.From.Address)
	case errors.Is(err, casebook.ErrCaseNotFound):
		return fmt.Sprintf("the %s names %s, which does not exist", ruleName(m.By), ref)
	case errors.Is(err, casebook.ErrCaseClosed):
		return fmt.Sprintf("%s is closed: open a new case", ref)
	case errors.Is(err, mail.ErrLimit), errors.Is(err, mail.ErrMalformed):
		// Found while the attachments were stored: said as the parser says it.
		return mailFault(err).Error()
	}
	return err.Error()
}

func ruleName(by string) string {
	switch by {
	case MatchedByToken:
		return "reply token"
	case MatchedByThread:
		return "thread"
	}
	return "subject"
}

// isMessageProblem tells errors about the message (quarantine it) from errors about
// the infrastructure (try again later). casebook.ErrScanUnavailable is the
// infrastructure's: the mail waits in the mailbox until the scanner answers.
func isMessageProblem(err error) bool { return CodeOf(err) != CodeOther }

// ExternalID is the idempotency key of a mail: the digest of its content without
// trace fields, with its Message-ID. The Message-ID alone would not do (senders reuse
// them); the digest alone would hide which mail it was.
func ExternalID(digest, messageID string) string {
	id := digest
	if messageID != "" {
		id += " <" + messageID + ">"
	}
	if len(id) > 512 {
		id = id[:512]
	}
	return strings.ToValidUTF8(id, "")
}

// Release adds a quarantined message, read back from its raw copy, to the case a
// person chose. The person (vouchedBy) vouches for the sender, so the update is
// written as if from a channel bound to the case's organisation, and their name is
// kept in its meta; its external id is the one the message had, so releasing twice
// adds it once.
func (p *MailProcessor) Release(ctx context.Context, raw io.ReadSeeker, caseNumber int64, rawBlob, vouchedBy string) (casebook.Outcome, error) {
	// One read gives the digest and the text; the files are decoded once, as they are
	// stored.
	if _, err := raw.Seek(0, io.SeekStart); err != nil {
		return casebook.Outcome{}, fmt.Errorf("release: %w", err)
	}
	d := mail.NewDigester()
	msg, err := mail.ReadText(io.TeeReader(raw, d), p.opt.Limits)
	if err != nil {
		return casebook.Outcome{}, fmt.Errorf("release: %w", err)
	}
	// Whatever ReadText left unread still counts for the digest.
	if _, err := io.Copy(d, raw); err != nil {
		return casebook.Outcome{}, fmt.Errorf("release: %w", err)
	}
	digest := d.Sum()
	c, err := p.st.CaseByNumber(ctx, caseNumber)
	if err != nil {
		return casebook.Outcome{}, fmt.Errorf("release: %w", err)
	}
	return p.svc.AddUpdate(ctx, casebook.Update{
		Source:       casebook.SourceEmail,
		ExternalID:   ExternalID(digest, msg.MessageID),
		CaseNumber:   caseNumber,
		Author:       casebook.Author{Kind: casebook.IdentityEmail, Value: msg.From.Address, Name: msg.From.Name},
		ChannelOrgID: c.OrgID,
		Body:         msg.Reply,
		Files:        p.files(raw),
		Meta: map[string]string{
			"message_id": msg.MessageID,
			"subject":    msg.Subject,
			"digest":     digest,
			"raw_blob":   rawBlob,
			"matched_by": MatchedByRelease,
			"vouched_by": vouchedBy,
		},
	})
}
