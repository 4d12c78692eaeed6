package casebook

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// ErrEmptyReply refuses a staff reply with neither words nor files.
var ErrEmptyReply = fmt.Errorf("%w: the reply is empty", ErrInvalidInput)

// Actor is who a staff use case acts for, with where the request came from, for the
// audit row it writes. User is nil for an operator at the shell who named nobody;
// OSUser then says which account ran the command.
type Actor struct {
	User      *User
	IP        string
	UserAgent string
	OSUser    string
}

// audit returns the audit row of action on object by a.
func (a Actor) audit(action, object, outcome string) AuditEntry {
	e := AuditEntry{Action: action, Object: object, Outcome: outcome, IP: a.IP, UserAgent: a.UserAgent, OSUser: a.OSUser}
	if a.User != nil {
		e.UserID, e.OrgID = &a.User.ID, a.User.OrgID
	}
	return e
}

// name is how a's decisions are signed in the record: the staff member's name and
// address, or the operating-system account.
func (a Actor) name() string {
	if a.User != nil {
		if a.User.Name != "" {
			return a.User.Name + " <" + a.User.Email + ">"
		}
		return a.User.Email
	}
	if a.OSUser != "" {
		return "operator " + a.OSUser
	}
	return "operator"
}

// staffOnly refuses an actor who is a customer or a disabled account. An operator at
// the shell (no user) already holds the server.
func (a Actor) staffOnly() error {
	if a.User == nil {
		return nil
	}
	if !a.User.Staff {
		return fmt.Errorf("%w: %s is not staff", ErrNotAllowed, a.User.Email)
	}
	if a.User.Disabled {
		return fmt.Errorf("%w: %s", ErrUserDisabled, a.User.Email)
	}
	return nil
}

// DeskStore is what the staff use cases need from storage. Each change is committed
// with its audit row in one transaction.
type DeskStore interface {
	CaseByNumber(ctx context.Context, number int64) (Case, error)
	UserByID(ctx context.Context, id int64) (User, error)
	// FirstCaseMailID is the Message-ID of the first case email to recipient, or
	// ErrNotFound.
	FirstCaseMailID(ctx context.Context, caseID int64, recipient string) (string, error)
	// ChangeCaseStatus moves the case to status to when it stands in one of from,
	// else ErrInvalidInput.
	ChangeCaseStatus(ctx context.Context, number int64, from []Status, to Status, audit AuditEntry) (Case, error)
	// SetCaseOwner hands the case to ownerID, who must be enabled staff.
	SetCaseOwner(ctx context.Context, number, ownerID int64, audit AuditEntry) (Case, error)
	QuarantineByID(ctx context.Context, id int64) (QuarantineItem, error)
	// ResolveQuarantine closes a pending row, or returns ErrAlreadyResolved.
	ResolveQuarantine(ctx context.Context, r QuarantineResolution) error
	Audit(ctx context.Context, e AuditEntry) error
}

// Releaser adds a quarantined message, read back from its raw copy in the blob store,
// to a case: the mail channel parses it, the domain does not. vouchedBy names the
// person who vouches for the sender; it is kept with the update.
type Releaser interface {
	Release(ctx context.Context, rawBlob string, caseNumber int64, vouchedBy string) (Outcome, error)
}

// DeskOptions configures a Desk.
type DeskOptions struct {
	Refs RefFormat
	// MessageIDDomain is the right-hand side of the Message-IDs of staff replies.
	MessageIDDomain string
	// Releaser reads quarantined mail back; without it ReleaseQuarantine fails.
	Releaser Releaser
	Logger   *slog.Logger
}

// Desk holds the staff's use cases, shared by the web page and the command line:
// reply to a case, move its status, hand it to another owner, release or drop
// quarantined mail. Each writes an audit row naming the staff member.
type Desk struct {
	store  DeskStore
	writer *Service
	opt    DeskOptions
	log    *slog.Logger
}

// NewDesk returns a Desk that adds updates through svc.
func NewDesk(store DeskStore, svc *Service, opt DeskOptions) *Desk {
	if opt.MessageIDDomain == "" {
		opt.MessageIDDomain = "casebook.invalid"
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	return &Desk{store: store, writer: svc, opt: opt, log: opt.Logger}
}

// Reply is a staff reply as it was added.
type Reply struct {
	Case      string `json:"case"`
	UpdateID  int64  `json:"update_id"`
	To        string `json:"to"`
	MessageID string `json:"message_id"`
	Files     int    `json:"files"`
}

// Reply adds a staff member's words (and files) to a case and queues the case email
// that carries them to the requester, with the case's reply address and threading
// headers, in the update's transaction. The files go through AddUpdate as any
// channel's. A reply to a closed case, or to a requester whose account is disabled,
// is refused: the mail would reach someone who can no longer answer on the case.
func (d *Desk) Reply(ctx context.Context, by Actor, number int64, body string, files FileSeq) (Reply, error) {
	ref := d.opt.Refs.Format(number)
	body = strings.TrimSpace(body)
	if body == "" && files == nil {
		return Reply{}, fmt.Errorf("reply to %s: %w", ref, ErrEmptyReply)
	}
	if body == "" {
		files = atLeastOneFile(files)
	}
	if by.User == nil {
		return Reply{}, fmt.Errorf("reply to %s: %w: replies are written by a staff member", ref, ErrNotAllowed)
	}
	if err := by.staffOnly(); err != nil {
		return Reply{}, fmt.Errorf("reply to %s: %w", ref, err)
	}
	c, err := d.store.CaseByNumber(ctx, number)
	if err != nil {
		return Reply{}, fmt.Errorf("reply to %s: %w", ref, err)
	}
	if c.Status == StatusClosed {
		return Reply{}, fmt.Errorf("reply to %s: %w", ref, ErrCaseClosed)
	}
	req, err := d.store.UserByID(ctx, c.RequesterID)
	if err != nil {
		return Reply{}, fmt.Errorf("reply to %s: %w", ref, err)
	}
	if req.Disabled {
		return Reply{}, fmt.Errorf("reply to %s: %w: the requester %s cannot log in or answer; enable the account first", ref, ErrUserDisabled, req.Email)
	}
	first, err := d.store.FirstCaseMailID(ctx, c.ID, c.Requester)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Reply{}, fmt.Errorf("reply to %s: %w", ref, err)
	}
	author := by.User.Name
	if author == "" {
		author = by.User.Email
	}
	mail := CaseMail{Case: c, Ref: ref, Event: CaseReply, Author: author, Body: body, InReplyTo: first,
		MessageID: NewMessageID(d.opt.MessageIDDomain)}.OutboxMail()
	out, err := d.writer.AddUpdate(ctx, Update{
		Source: SourceSystem,
		// Each reply is a new update: the id only has to be unique.
		ExternalID: "reply:" + strings.ToLower(rand.Text()),
		CaseNumber: number,
		Author:     Author{UserID: by.User.ID},
		Body:       body,
		Files:      files,
		Mails:      []OutboxMail{mail},
	})
	if err != nil {
		return Reply{}, fmt.Errorf("reply to %s: %w", ref, err)
	}
	if err := d.store.Audit(ctx, by.audit("case_reply", ref, fmt.Sprintf("success: update %d, mail %s", out.UpdateID, mail.MessageID))); err != nil {
		return Reply{}, fmt.Errorf("reply to %s: %w", ref, err)
	}
	return Reply{Case: ref, UpdateID: out.UpdateID, To: c.Requester, MessageID: mail.MessageID, Files: len(out.Attachments)}, nil
}

// StatusChange is what SetStatus can do to a case.
type StatusChange string

// The status changes staff make.
const (
	// Resolve marks an open or pending case solved; the customer's next message
	// reopens it.
	Resolve StatusChange = "resolve"
	// Close ends a case for good: nothing more is added to it.
	Close StatusChange = "close"
	// Reopen moves a resolved or closed case back to open.
	Reopen StatusChange = "reopen"
)

// ParseStatusChange checks that s names a status change.
func ParseStatusChange(s string) (StatusChange, error) {
	switch c := StatusChange(s); c {
	case Resolve, Close, Reopen:
		return c, nil
	}
	return "", fmt.Errorf("%w: unknown status change %q (resolve, close, reopen)", ErrInvalidInput, s)
}

// transition returns the statuses a change starts from and the one it ends in.
func (c StatusChange) transition() (from []Status, to Status) {
	switch c {
	case Resolve:
		return []Status{StatusOpen, StatusPending}, StatusResolved
	case Close:
		return []Status{StatusOpen, StatusPending, StatusResolved}, StatusClosed
	}
	return []Status{StatusResolved, StatusClosed}, StatusOpen
}

// SetStatus resolves, closes or reopens a case. A change that does not apply to the
// case's status (resolving a closed case, reopening an open one) is ErrInvalidInput
// and changes nothing.
func (d *Desk) SetStatus(ctx context.Context, by Actor, number int64, change StatusChange) (Case, error) {
	ref := d.opt.Refs.Format(number)
	if _, err := ParseStatusChange(string(change)); err != nil {
		return Case{}, fmt.Errorf("%s %s: %w", change, ref, err)
	}
	if err := by.staffOnly(); err != nil {
		return Case{}, fmt.Errorf("%s %s: %w", change, ref, err)
	}
	from, to := change.transition()
	c, err := d.store.ChangeCaseStatus(ctx, number, from, to, by.audit("case_"+string(change), ref, "success: "+string(to)))
	if err != nil {
		return Case{}, fmt.Errorf("%s %s: %w", change, ref, err)
	}
	return c, nil
}

// Reassign hands a case to another staff member, who must be enabled staff.
func (d *Desk) Reassign(ctx context.Context, by Actor, number, ownerID int64) (Case, error) {
	ref := d.opt.Refs.Format(number)
	if err := by.staffOnly(); err != nil {
		return Case{}, fmt.Errorf("reassign %s: %w", ref, err)
	}
	owner, err := d.store.UserByID(ctx, ownerID)
	if err != nil {
		return Case{}, fmt.Errorf("reassign %s: %w", ref, err)
	}
	if !owner.Staff || owner.Disabled {
		return Case{}, fmt.Errorf("reassign %s: %w: %s is not enabled staff", ref, ErrInvalidInput, owner.Email)
	}
	c, err := d.store.SetCaseOwner(ctx, number, ownerID, by.audit("case_reassign", ref, "success: owner "+owner.Email))
	if err != nil {
		return Case{}, fmt.Errorf("reassign %s: %w", ref, err)
	}
	return c, nil
}

// atLeastOneFile fails files with ErrEmptyReply when it yields none, inside the
// write path, so that nothing is committed: a form's file input may be left empty.
func atLeastOneFile(files FileSeq) FileSeq {
	return func(yield func(File) error) error {
		n := 0
		err := files(func(f File) error {
			n++
			return yield(f)
		})
		if err == nil && n == 0 {
			return ErrEmptyReply
		}
		return err
	}
}
