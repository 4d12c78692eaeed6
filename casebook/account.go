package casebook

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// NewAccount is a portal user to add: a customer of an org, or staff (no org).
type NewAccount struct {
	OrgID *int64
	Email string
	Name  string
	Staff bool
}

// NewAccountCode is a new account's temporary password as stored: its hash, the mail
// that carries it and the audit row, all written with the account.
type NewAccountCode struct {
	Hash    string
	Expires time.Time
	// Mail and Audit are made once the user's id is known.
	Mail  func(u User) OutboxMail
	Audit func(u User) AuditEntry
}

// AccountStore adds accounts.
type AccountStore interface {
	// AddUserWithCode creates the user and its email identity, stores the temporary
	// password's hash, queues its mail and writes the audit row in one transaction:
	// an account never exists without its way in, nor a mail without its account.
	AddUserWithCode(ctx context.Context, a NewAccount, code NewAccountCode) (User, error)
}

// NewAccountTTL is how long the temporary password of a new account works. Longer than
// a reset's 30 minutes because nobody asked for it: the customer may first read the
// mail days later (a weekend, leave). It stays safe: 130 random bits, stored hashed,
// single use, void once a new one is issued, and the account has no other password a
// thief could use instead; staff reissue it with `casebook user reset-password`.
const NewAccountTTL = 7 * 24 * time.Hour

// AddAccount adds a user with a temporary password, mailed to them and returned for
// the operator to hand over: the account's only way in, which leads to choosing
// their own. messageIDDomain names the mail's Message-ID.
func AddAccount(ctx context.Context, st AccountStore, by Actor, a NewAccount, messageIDDomain string) (User, string, error) {
	if !a.Staff && a.OrgID == nil {
		return User{}, "", fmt.Errorf("add user %s: %w: a customer needs an org", a.Email, ErrInvalidInput)
	}
	if messageIDDomain == "" {
		messageIDDomain = "casebook.invalid"
	}
	code := NewTemporaryPassword()
	expires := time.Now().Add(NewAccountTTL).UTC().Truncate(time.Second)
	u, err := st.AddUserWithCode(ctx, a, NewAccountCode{
		Hash:    ResetCodeHash(code),
		Expires: expires,
		Mail: func(u User) OutboxMail {
			return OutboxMail{
				Kind:      MailTemporaryPassword,
				UserID:    &u.ID,
				Recipient: u.Email,
				MessageID: NewMessageID(messageIDDomain),
				Data:      TemporaryPasswordMail{Password: code, ExpiresAt: expires, Name: u.Name, Reason: ReasonNewAccount},
			}
		},
		Audit: func(u User) AuditEntry {
			e := by.audit("reset_request", "user:"+u.Email, "issued_by_cli_"+ReasonNewAccount)
			// The row is about the new account, as every reset_request row is.
			e.UserID, e.OrgID = &u.ID, u.OrgID
			return e
		},
	})
	if err != nil {
		return User{}, "", err
	}
	return u, code, nil
}

// NewTemporaryPassword returns a temporary password of 26 base32 characters (130
// random bits, rand.Text): it cannot be guessed within any throttle.
func NewTemporaryPassword() string { return strings.ToLower(rand.Text()) }

// ResetCodeHash is what is stored of a temporary password. Case, spaces and dashes
// are forgiven, since people copy codes by hand.
func ResetCodeHash(code string) string {
	c := strings.ToLower(strings.NewReplacer(" ", "", "-", "", "\t", "").Replace(strings.TrimSpace(code)))
	sum := sha256.Sum256([]byte("casebook reset code\x00" + c))
	return hex.EncodeToString(sum[:])
}
