package doctor

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Mailbox is an IMAP mailbox casebook polls.
type Mailbox struct {
	// Name labels the check: the mailbox URL without its password.
	Name string
	// Folder is the mailbox polled; Folders must exist too.
	Folder  string
	Folders []string
	// Connect connects, secures the connection and logs in the way the poller does
	// (imap.Mailbox.Connect). Its errors carry Stage(): connect, tls, starttls or login.
	Connect func(ctx context.Context) (*imapclient.Client, error)
}

// IMAP logs in to the mailbox as the poller does, and checks the folders exist and the
// server offers IDLE (RFC 2177), without which new mail waits for the next poll.
func IMAP(m Mailbox) Check {
	return Check{Name: "imap " + m.Name, Run: func(ctx context.Context) (string, error) {
		c, err := m.Connect(ctx)
		if err != nil {
			return "", fmt.Errorf("%s (%w)", imapHint(err), err)
		}
		defer c.Close()
		// imapclient has no context: closing the connection ends a hung command.
		stop := context.AfterFunc(ctx, func() { c.Close() })
		defer stop()

		list, err := c.List("", "*", nil).Collect()
		if err != nil {
			return "", fmt.Errorf("list folders: %w", err)
		}
		have := map[string]bool{}
		for _, l := range list {
			have[l.Mailbox] = true
			if strings.EqualFold(l.Mailbox, "INBOX") {
				have["INBOX"] = true
			}
		}
		var missing []string
		for _, f := range append([]string{m.Folder}, m.Folders...) {
			if f != "" && !have[f] {
				missing = append(missing, f)
			}
		}
		if len(missing) > 0 {
			return "", fmt.Errorf("logged in, but folder(s) %s do not exist: create them or fix the mailbox URL", strings.Join(missing, ", "))
		}
		caps := c.Caps()
		c.Logout().Wait()
		if !caps.Has(imap.CapIdle) {
			return "", Warning("logged in, folders present, but the server lacks IDLE: new mail waits for the next poll")
		}
		return "logged in, folders present, IDLE supported", nil
	}}
}

// imapHint turns the step that failed into what to check.
func imapHint(err error) string {
	var staged interface{ Stage() string }
	stage := ""
	if errors.As(err, &staged) {
		stage = staged.Stage()
	}
	var ie *imap.Error
	switch {
	case stage == "token":
		return "could not get an OAuth access token"
	case stage == "login" && errors.As(err, &ie):
		return "the server refused the login: check the user and password (with OAuth: that the app may open this mailbox)"
	case stage == "login":
		return "login failed"
	case stage == "tls":
		return "TLS with the server failed: is it the implicit-TLS port (993), and is its certificate valid for the host?"
	case stage == "starttls":
		return "STARTTLS with the server failed: does it offer STARTTLS, and is its certificate valid for the host?"
	}
	return "cannot connect: is the host and port right, and open from here?"
}
