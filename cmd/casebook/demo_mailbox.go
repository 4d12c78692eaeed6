package main

import (
	"net/url"

	"github.com/casebookhq/casebook/cmd/casebook/demo"
)

// demoMailbox points the IMAP poller at the demo's mailbox, in cleartext: the server
// listens on loopback only.
func (a *app) demoMailbox(imapSrv *demo.IMAPServer) error {
	u := url.URL{Scheme: "imap", User: url.UserPassword(imapSrv.User, imapSrv.Password), Host: imapSrv.Addr, Path: "/INBOX", RawQuery: "tls=none"}
	a.cfg.IMAP.Mailboxes = []string{u.String()}
	return nil
}
