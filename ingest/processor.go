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
	// One read keeps the raw copy and computes the digest while the parser reads the
	// header, then the text, and — only for a mail to add — the attachments, decoded
	// once on their way into the blob store. A refused mail costs that read with its
	// attachments skipped.
	check := p.beginVerdict(ctx, raw)
	rd, err := p.read(ctx, raw, check)
	if err != nil {
		return Report{}, err
	}
	defer rd.stop()
	text, perr := mail.Begin(rd.r, p.opt.Limits)
	msg := text.Message()
	var d *decision
	if perr == nil && msg.AutoReply == "" && !check.NeedsMessage() {
		// The verdict came with the header (a trusted Authentication-Results, or no
		// signature to check): the mail is decided before its parts are read.
		if d, err = p.decide(ctx, msg, check.Verdict()); err != nil {
			return Report{}, err
		}
		if d.problem == nil {
			return p.addInOneRead(ctx, loc, raw, rd, text, d)
		}
	}
	if perr == nil {
		perr = text.Rest(nil)
	}
	k, err := rd.finish()
	if err != nil {
		return Report{}, err
	}
	// Waited for whatever the outcome, so that no check outlives the message.
	verdict := check.Verdict()
	if perr != nil {
		return p.refuseFault(ctx, loc, k, msg, perr)
	}
	rep, u := p.prepare(loc, msg)
	p.complete(&rep, &u, k, msg)
	if msg.AutoReply != "" {
		return p.refuse(ctx, loc, &rep, u, Ignored, CodeAutoReply, "auto-reply or bounce: "+msg.AutoReply)
	}
	setVerdict(&rep, u, verdict)
	if d == nil {
		if d, err = p.decide(ctx, msg, verdict); err != nil {
			return Report{}, err
		}
	}
	setMatch(&rep, &u, d.match)
	if d.problem != nil {
		return p.refuse(ctx, loc, &rep, u, Quarantined, CodeOf(d.problem), p.reason(d.problem, msg, d.match, verdict))
	}
	// The verdict needed the whole mail: its attachments are read a second time.
	u.Files = p.files(raw)
	out, err := p.svc.AddUpdate(ctx, u)
	return p.added(ctx, loc, rep, u, out, err, msg, d)
}

// decision is what the header says of a mail: the case it names, and the problem
// that refuses it (nil when it is to be added).
type decision struct {
	match   Match
	verdict senderauth.Verdict
	problem error
}

// decide matches a mail to its case and applies the sender policy; an error is the
// infrastructure's.
func (p *MailProcessor) decide(ctx context.Context, msg *mail.Message, v senderauth.Verdict) (*decision, error) {
	m, err := p.matcher().Match(ctx, msg)
	d := &decision{match: m, verdict: v}
	switch {
	case err != nil && !isMessageProblem(err):
		return nil, fmt.Errorf("process message: %w", err)
	case v.Result == senderauth.Fail:
		d.problem = ErrSenderNotVerified
	case err != nil:
		d.problem = err
	default:
		err = p.checkSender(ctx, msg, m, v)
		if err != nil && !isMessageProblem(err) {
			return nil, fmt.Errorf("process message: %w", err)
		}
		d.problem = err
	}
	return d, nil
}

// addInOneRead adds a mail decided from its header while the read goes on: AddUpdate
// stores the attachments as the parser meets them, and once the read is over, the
// digest (the external id), the text and the raw copy complete the update before
// its commit.
func (p *MailProcessor) addInOneRead(ctx context.Context, loc Location, raw io.ReadSeeker, rd *reading, text *mail.Reading, d *decision) (Report, error) {
	msg := text.Message()
	rep, u := p.prepare(loc, msg)
	setVerdict(&rep, u, d.verdict)
	setMatch(&rep, &u, d.match)
	// restErr is how the walk of the parts ended; fileFault says it ended at a file
	// (its bytes, its type, the store), not at a fault ReadText finds too.
	var restErr error
	var fileFault bool
	u.Files = func(yield func(casebook.File) error) error {
		restErr = text.Rest(fileOf(func(f casebook.File) error {
			err := yield(f)
			fileFault = err != nil
			return err
		}))
		return restErr
	}
	u.Finish = func(f *casebook.Update) error {
		k, err := rd.finish()
		if err != nil {
			return err
		}
		p.complete(&rep, f, k, msg)
		return nil
	}
	out, err := p.svc.AddUpdate(ctx, u)
	if err == nil || !isMessageProblem(err) {
		return p.added(ctx, loc, rep, u, out, err, msg, d)
	}
	// Refused inside the write path (not a contact, a closed case, a file no channel
	// takes, a fault in the mail): the read is completed for the quarantine's record.
	var perr error
	if !text.Started() {
		perr = text.Rest(nil)
	} else if !fileFault {
		perr = restErr
	}
	k, ferr := rd.finish()
	if ferr != nil {
		return Report{}, ferr
	}
	if perr != nil {
		// A fault in the mail itself is reported as when the read finds it before the
		// decision.
		return p.refuseFault(ctx, loc, k, msg, perr)
	}
	if restErr != nil {
		// The walk stopped at a file, maybe before the text: read it again.
		msg = p.header(raw)
	}
	p.complete(&rep, &u, k, msg)
	return p.added(ctx, loc, rep, u, out, err, msg, d)
}

// refuseFault quarantines a mail the parser found fault with (perr), or returns perr
// when it came from the spool.
func (p *MailProcessor) refuseFault(ctx context.Context, loc Location, k kept, msg *mail.Message, perr error) (Report, error) {
	if !isMessageProblem(perr) {
		return Report{}, fmt.Errorf("process message: %w", perr)
	}
	rep, u := p.prepare(loc, msg)
	p.complete(&rep, &u, k, msg)
	return p.refuse(ctx, loc, &rep, u, Quarantined, CodeOf(perr), perr.Error())
}

// added reports what AddUpdate did with a mail, and quarantines a mail the write
// path refused.
func (p *MailProcessor) added(ctx context.Context, loc Location, rep Report, u casebook.Update, out casebook.Outcome, err error, msg *mail.Message, d *decision) (Report, error) {
	if err != nil {
		if isMessageProblem(err) {
			return p.refuse(ctx, loc, &rep, u, Quarantined, CodeOf(err), p.reason(err, msg, d.match, d.verdict))
		}
		return rep, fmt.Errorf("process message: %w", err)
	}
	rep.Result = Result{Disposition: Processed, Case: p.svc.Refs().Format(d.match.CaseNumber)}
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

// setVerdict records the sender verdict in the report and the update's meta.
func setVerdict(rep *Report, u casebook.Update, v senderauth.Verdict) {
	rep.SenderAuth = v
	u.Meta["sender_auth"] = string(v.Result)
	u.Meta["sender_auth_method"] = v.Method
	u.Meta["sender_auth_domain"] = v.Domain
}

// setMatch records how the mail was matched, in the report and the update.
func setMatch(rep *Report, u *casebook.Update, m Match) {
	rep.CaseNumber, rep.MatchedBy = m.CaseNumber, m.By
	u.CaseNumber = m.CaseNumber
	u.ProvenRecipient = m.Proven
	u.Meta["matched_by"] = m.By
}

// prepare fills the report and the update every outcome shares from the header;
// complete adds what the end of the read gives.
func (p *MailProcessor) prepare(loc Location, msg *mail.Message) (Report, casebook.Update) {
	rep := Report{
		MessageID: msg.MessageID,
		From:      msg.From.Address,
		Subject:   msg.Subject,
	}
	u := casebook.Update{
		Source: casebook.SourceEmail,
		Author: casebook.Author{Kind: casebook.IdentityEmail, Value: msg.From.Address, Name: msg.From.Name},
		Meta: map[string]string{
			"message_id": msg.MessageID,
			"subject":    msg.Subject,
		},
	}
	if loc.Mailbox != "" {
		cp := CheckpointAt(loc)
		u.Checkpoint = &cp
		u.Meta["mailbox"] = loc.Mailbox
		u.Meta["uid"] = strconv.FormatUint(uint64(loc.UID), 10)
		u.Meta["uidvalidity"] = strconv.FormatUint(uint64(loc.UIDValidity), 10)
	}
	return rep, u
}

// complete adds the external id, the text and the raw copy to rep and u. The raw
// message is kept so a person can always see what arrived, whatever becomes of it
// (unless it is over the size limit).
func (p *MailProcessor) complete(rep *Report, u *casebook.Update, k kept, msg *mail.Message) {
	rep.ExternalID = ExternalID(k.digest, msg.MessageID)
	u.ExternalID = rep.ExternalID
	u.Body = msg.Reply
	u.Meta["digest"] = k.digest
	if k.rawBlob != "" {
		u.Meta["raw_blob"] = k.rawBlob
	}
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
	rd, err := p.read(ctx, raw, nil)
	if err != nil {
		return Result{}, err
	}
	defer rd.stop()
	k, err := rd.finish()
	if err != nil {
		return Result{}, err
	}
	msg := p.header(raw)
	rep, u := p.prepare(loc, msg)
	p.complete(&rep, &u, k, msg)
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
		return mail.Attachments(raw, p.opt.Limits, fileOf(yield))
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
	// One read gives the digest, the text and the files, each decoded once as it is
	// stored.
	if _, err := raw.Seek(0, io.SeekStart); err != nil {
		return casebook.Outcome{}, fmt.Errorf("release: %w", err)
	}
	d := mail.NewDigester()
	text, err := mail.Begin(io.TeeReader(raw, d), p.opt.Limits)
	if err != nil {
		return casebook.Outcome{}, fmt.Errorf("release: %w", err)
	}
	msg := text.Message()
	c, err := p.st.CaseByNumber(ctx, caseNumber)
	if err != nil {
		return casebook.Outcome{}, fmt.Errorf("release: %w", err)
	}
	return p.svc.AddUpdate(ctx, casebook.Update{
		Source:       casebook.SourceEmail,
		CaseNumber:   caseNumber,
		Author:       casebook.Author{Kind: casebook.IdentityEmail, Value: msg.From.Address, Name: msg.From.Name},
		ChannelOrgID: c.OrgID,
		Files: func(yield func(casebook.File) error) error {
			return text.Rest(fileOf(yield))
		},
		Finish: func(u *casebook.Update) error {
			// Whatever the parser left unread still counts for the digest.
			if _, err := io.Copy(d, raw); err != nil {
				return err
			}
			digest := d.Sum()
			u.ExternalID, u.Body = ExternalID(digest, msg.MessageID), msg.Reply
			u.Meta["digest"] = digest
			return nil
		},
		Meta: map[string]string{
			"message_id": msg.MessageID,
			"subject":    msg.Subject,
			"raw_blob":   rawBlob,
			"matched_by": MatchedByRelease,
			"vouched_by": vouchedBy,
		},
	})
}

// fileOf hands each attachment the parser meets to the write path's yield.
func fileOf(yield func(casebook.File) error) func(a mail.Attachment, body io.Reader) error {
	return func(a mail.Attachment, body io.Reader) error {
		return yield(casebook.File{Name: a.Filename, ContentType: a.DeclaredType, Inline: a.Inline, Body: body})
	}
}
