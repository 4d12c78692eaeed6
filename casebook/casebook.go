// Package casebook is the domain of the casebook service: organisations, users and
// their identities, support cases, the case timeline, and the one write path
// (Service.AddUpdate) through which every channel adds to a case.
//
// The package imports only the standard library. Storage, blobs, mail, the web page
// and the chat platforms are adapters in sub-packages and sibling trees that
// implement or consume the small interfaces declared here.
package casebook

import (
	"errors"
	"fmt"
	"time"
)

// Domain outcomes. Adapters wrap them with %w; callers test them with errors.Is.
var (
	ErrCaseNotFound   = errors.New("case not found")
	ErrAmbiguousCase  = errors.New("more than one case is named")
	ErrNoCaseRef      = errors.New("no case is named")
	ErrNotAllowed     = errors.New("author is not allowed to write to this case")
	ErrCaseClosed     = errors.New("case is closed: open a new case")
	ErrTooLarge       = errors.New("file is larger than the limit")
	ErrTooManyFiles   = errors.New("too many files")
	ErrDuplicate      = errors.New("already stored")
	ErrOrgNotFound    = errors.New("organisation not found")
	ErrUserNotFound   = errors.New("user not found")
	ErrEmailTaken     = errors.New("email address is already registered")
	ErrOrgExists      = errors.New("organisation already exists")
	ErrNotFound       = errors.New("not found")
	ErrInvalidInput   = errors.New("invalid input")
	ErrBindingMissing = errors.New("channel is not bound to an organisation")
	// ErrUserDisabled refuses everything from a disabled account, through every channel.
	ErrUserDisabled = errors.New("account is disabled")
	// ErrFileTypeNotAllowed refuses a file sniffed as a program or a script, or as a
	// type outside Options.AllowedTypes.
	ErrFileTypeNotAllowed = errors.New("file type is not allowed")
	// ErrTokenExpired reports a reply token that verifies but is past its expiry.
	ErrTokenExpired = errors.New("reply token has expired")
)

// Source names the channel an update came through.
type Source string

// The channels.
const (
	SourceEmail   Source = "email"
	SourceSlack   Source = "slack"
	SourceDiscord Source = "discord"
	SourceWeb     Source = "web"
	SourceSystem  Source = "system"
)

// Status is where a case stands.
type Status string

// The statuses a case moves through. Resolved cases reopen when the customer writes;
// closed cases take nothing more.
const (
	StatusOpen     Status = "open"
	StatusPending  Status = "pending"
	StatusResolved Status = "resolved"
	StatusClosed   Status = "closed"
)

// ParseStatus checks that s names a status.
func ParseStatus(s string) (Status, error) {
	switch st := Status(s); st {
	case StatusOpen, StatusPending, StatusResolved, StatusClosed:
		return st, nil
	}
	return "", fmt.Errorf("%w: unknown status %q (open, pending, resolved, closed)", ErrInvalidInput, s)
}

// IdentityKind says what an identity's value is.
type IdentityKind string

// The kinds of identity that map a channel's author to a user.
const (
	IdentityEmail   IdentityKind = "email"
	IdentitySlack   IdentityKind = "slack"
	IdentityDiscord IdentityKind = "discord"
)

// Org is a customer organisation.
type Org struct {
	ID        int64     `db:"id" json:"id"`
	Name      string    `db:"name" json:"name"`
	Domain    string    `db:"domain" json:"domain,omitempty"`
	CreatedAt time.Time `db:"created_at" json:"created_at"`
}

// User is a portal account: a customer of one org, or a staff member (no org).
type User struct {
	ID    int64  `db:"id" json:"id"`
	OrgID *int64 `db:"org_id" json:"org_id"`
	Email string `db:"email" json:"email"`
	Name  string `db:"name" json:"name"`
	Staff bool   `db:"staff" json:"staff"`
	// Disabled accounts cannot log in, and their identities may not write.
	Disabled  bool      `db:"disabled" json:"disabled"`
	CreatedAt time.Time `db:"created_at" json:"created_at"`
	// SessionEpoch is raised each time all of the user's sessions are ended; a session
	// begun under an older epoch is over.
	SessionEpoch int64 `db:"session_epoch" json:"-"`
}

// InOrg reports whether u is a customer of org.
func (u User) InOrg(org int64) bool { return u.OrgID != nil && *u.OrgID == org }

// Identity ties a channel-specific author (an email address, a Slack or Discord user id)
// to a user.
type Identity struct {
	Kind   IdentityKind `db:"kind" json:"kind"`
	Value  string       `db:"value" json:"value"`
	UserID int64        `db:"user_id" json:"user_id"`
}

// Binding ties a chat channel to the org whose cases may be written from it.
// Workspace is the Slack team or Discord guild id; empty matches any.
type Binding struct {
	Platform  Source `db:"platform" json:"platform"`
	Workspace string `db:"workspace" json:"workspace"`
	Channel   string `db:"channel" json:"channel"`
	OrgID     int64  `db:"org_id" json:"org_id"`
}

// Case is a support case.
type Case struct {
	ID          int64     `db:"id" json:"-"`
	Number      int64     `db:"number" json:"-"`
	OrgID       int64     `db:"org_id" json:"org_id"`
	OrgName     string    `db:"org_name" json:"org"`
	OrgDomain   string    `db:"org_domain" json:"-"`
	RequesterID int64     `db:"requester_id" json:"requester_id"`
	Requester   string    `db:"requester_email" json:"requester"`
	OwnerID     int64     `db:"owner_id" json:"owner_id"`
	Owner       string    `db:"owner_email" json:"owner"`
	OwnerName   string    `db:"owner_name" json:"owner_name"`
	Subject     string    `db:"subject" json:"subject"`
	Status      Status    `db:"status" json:"status"`
	Attachments int       `db:"attachment_count" json:"attachments"`
	CreatedAt   time.Time `db:"created_at" json:"created_at"`
	UpdatedAt   time.Time `db:"updated_at" json:"updated_at"`
}

// Attachment is a stored file on a case.
type Attachment struct {
	ID          int64     `db:"id" json:"id"`
	CaseID      int64     `db:"case_id" json:"-"`
	UpdateID    int64     `db:"update_id" json:"update_id"`
	Filename    string    `db:"filename" json:"filename"`
	ContentType string    `db:"content_type" json:"content_type"`
	Size        int64     `db:"size" json:"size"`
	SHA256      string    `db:"sha256" json:"sha256"`
	BlobKey     string    `db:"blob_key" json:"-"`
	Inline      bool      `db:"inline" json:"inline"`
	Author      string    `db:"author" json:"author"`
	CreatedAt   time.Time `db:"created_at" json:"created_at"`
}

// TimelineEntry is one update on a case as it is shown.
type TimelineEntry struct {
	ID           int64        `db:"id" json:"id"`
	Source       Source       `db:"source" json:"source"`
	ExternalID   string       `db:"external_id" json:"external_id"`
	AuthorUserID *int64       `db:"author_user_id" json:"author_user_id"`
	Author       string       `db:"author" json:"author"`
	Body         string       `db:"body" json:"body"`
	CreatedAt    time.Time    `db:"created_at" json:"created_at"`
	Attachments  []Attachment `db:"-" json:"attachments"`
}

// Session is a logged-in web session as its user and staff see it; its token is never
// shown.
type Session struct {
	ID        int64     `db:"id" json:"id"`
	CreatedAt time.Time `db:"created_at" json:"created_at"`
	ExpiresAt time.Time `db:"expiry" json:"expires_at"`
	IP        string    `db:"ip" json:"ip"`
	UserAgent string    `db:"user_agent" json:"user_agent"`
	// Current marks the session the asking request belongs to.
	Current bool `db:"current" json:"current"`
}

// CaseFilter selects one keyset page of cases, most recent activity first. Zero
// fields do not filter.
type CaseFilter struct {
	OrgID   int64
	OwnerID int64
	// Statuses are merged into one page.
	Statuses []Status
	// Number, when set, selects the one case with that number.
	Number int64
	// Text, when set, keeps the cases whose subject, requester address or requester
	// name holds it, ignoring letter case.
	Text string
	// After is the last row of the previous page.
	After *CaseCursor
	Limit int
}

// CaseCursor is a position in a list ordered by (UpdatedAt, ID) descending.
type CaseCursor struct {
	UpdatedAt time.Time
	ID        int64
}
