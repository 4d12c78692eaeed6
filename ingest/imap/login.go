package imap

import "github.com/emersion/go-imap/v2/imapclient"

// Login logs c in to the mailbox the way the poller does (LOGIN with the password, or
// XOAUTH2 with the access token, read from password_file when one is named), for
// checks outside the poller such as `casebook doctor`.
func (m Mailbox) Login(c *imapclient.Client) error {
	p := &Poller{cfg: Config{Mailbox: m}}
	return p.login(c)
}
