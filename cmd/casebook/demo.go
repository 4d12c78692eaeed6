package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/lib/pq"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/postgres"
	"github.com/casebookhq/casebook/cmd/casebook/demo"
)

// demoDatabasePrefix guards the one DROP DATABASE casebook runs: the demo drops only a
// database whose name starts with it, never another.
const demoDatabasePrefix = "casebook_demo"

// demoSettle bounds the wait for the demo's own mail to be ingested and its
// notifications sent before the summary is printed.
const demoSettle = 2 * time.Minute

// The demo's people and places. example.com-style names (RFC 2606) reach nobody.
const (
	demoOrg       = "Acme Health"
	demoDomain    = "acme.example"
	demoCustomer  = "alice@acme.example"
	demoStaff     = "sam@support.example"
	demoSupport   = "support@support.example"
	demoMailFrom  = "Acme Support <support@support.example>"
	demoMailboxPw = "demo-mailbox-password"
)

var demoCases = []string{"Lab results for the March visit", "Insurance card for the new clinic", "Blood pressure readings"}

// demoOptions are the demo's own flags.
type demoOptions struct {
	database string
	mbox     string
	emlDir   string
}

// demoReport is what the demo prints after its start-up.
type demoReport struct {
	demo.Summary
	Web               string   `json:"web"`
	Admin             string   `json:"admin,omitempty"`
	Customer          string   `json:"customer"`
	TemporaryPassword string   `json:"temporary_password"`
	Staff             string   `json:"staff"`
	StaffPassword     string   `json:"staff_temporary_password"`
	Cases             []string `json:"cases"`
	MailDir           string   `json:"mail_dir"`
	Database          string   `json:"database"`
}

func demoCommand() command {
	var o demoOptions
	return command{
		usage: "[--mbox FILE | --eml DIR] [--http ADDR] [--admin ADDR] [--data-dir DIR]",
		help:  "try casebook here: a demo database, mailbox and mail sink, with the real poller, outbox and web page",
		flags: func(fs *flag.FlagSet, a *app) {
			if f := serveCommand().flags; f != nil {
				f(fs, a)
			}
			fs.StringVar(&o.database, "demo-database", demoDatabasePrefix, "name of the demo's database, dropped and created again at each start; must start with "+demoDatabasePrefix)
			fs.StringVar(&o.mbox, "mbox", "", "also deliver the mail in this mbox file to the demo mailbox")
			fs.StringVar(&o.emlDir, "eml", "", "also deliver the *.eml files in this directory to the demo mailbox")
		},
		run: func(ctx context.Context, a *app, _ []string) error {
			return runDemo(ctx, a, o)
		},
	}
}

func runDemo(ctx context.Context, a *app, o demoOptions) error {
	if !strings.HasPrefix(o.database, demoDatabasePrefix) {
		return fmt.Errorf("%w: --demo-database %q must start with %s: the demo drops and recreates it", errUsage, o.database, demoDatabasePrefix)
	}
	var own [][]byte
	if o.mbox != "" {
		f, err := os.Open(o.mbox)
		if err != nil {
			return fmt.Errorf("--mbox: %w", err)
		}
		msgs, err := demo.ReadMbox(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("--mbox %s: %w", o.mbox, err)
		}
		own = append(own, msgs...)
	}
	if o.emlDir != "" {
		msgs, err := demo.ReadEMLDir(o.emlDir)
		if err != nil {
			return fmt.Errorf("--eml: %w", err)
		}
		own = append(own, msgs...)
	}

	dbURL, err := recreateDemoDatabase(ctx, a.cfg.DatabaseURL, o.database)
	if err != nil {
		return err
	}
	a.cfg.DatabaseURL = dbURL
	st, err := postgres.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	a.st = st
	if _, err := st.Migrate(ctx); err != nil {
		return err
	}

	// The embedded servers stand in for the outside world.
	imapSrv, err := demo.StartIMAP(demoSupport, demoMailboxPw, []string{"INBOX"}, a.log)
	if err != nil {
		return err
	}
	defer imapSrv.Close()
	mailDir, err := filepath.Abs(filepath.Join(a.cfg.DataDir, "demo-mail"))
	if err != nil {
		return err
	}
	sink, err := demo.StartSMTP(mailDir, a.log)
	if err != nil {
		return err
	}
	defer sink.Close()
	if err := a.demoConfig(imapSrv, sink); err != nil {
		return err
	}

	rep := demoReport{Web: "http://" + a.cfg.Web.HTTP + "/", MailDir: mailDir, Database: o.database}
	if a.cfg.Admin != "" {
		rep.Admin = "http://" + a.cfg.Admin + "/metrics"
	}
	cases, err := a.seedDemo(ctx, st, &rep)
	if err != nil {
		return err
	}
	delivered, err := deliverDemoMail(imapSrv, cases, own)
	if err != nil {
		return err
	}

	comps, err := a.buildServe(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- runComponents(ctx, a, comps) }()

	activity := func(ctx context.Context) (postgres.Activity, error) {
		return st.ActivityOf(ctx, string(casebook.SourceEmail), string(casebook.MailOwnerNotification))
	}
	return a.settleDemo(ctx, activity, delivered, done, rep)
}

// settleDemo waits for the demo's mail to be handled, prints the summary, and runs
// until the components stop. done yields the components' result exactly once, so
// whichever step receives it must be the one that returns it.
func (a *app) settleDemo(ctx context.Context, activity func(context.Context) (postgres.Activity, error), delivered int, done <-chan error, rep demoReport) error {
	act, stopped, err := waitForDemo(ctx, activity, delivered, done)
	switch {
	case stopped && ctx.Err() != nil:
		// Stopped (Ctrl-C) during start-up, and the components have finished.
		return err
	case stopped:
		if err == nil {
			err = errors.New("components stopped")
		}
		return fmt.Errorf("demo stopped before its mail was handled: %w", err)
	case ctx.Err() != nil:
		// Stopped (Ctrl-C) during start-up: let the components finish.
		return <-done
	case err != nil:
		return err
	}
	rep.Summary = demo.Summary{Ingested: act.Updates, Quarantined: act.Quarantined + act.Ignored,
		Attachments: act.Attachments, Notifications: act.MailsSent}
	if err := a.print(rep, rep.human(delivered)); err != nil {
		return err
	}
	return <-done
}

// recreateDemoDatabase drops the demo database named name on the server of dsn,
// when it exists, and returns dsn pointing at it; postgres.Open creates it again.
func recreateDemoDatabase(ctx context.Context, dsn, name string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", errors.New("--database-url is not a URL like postgres://user@host:5432/casebook")
	}
	u.Path = "/postgres"
	db, err := sql.Open("postgres", u.String())
	if err != nil {
		return "", fmt.Errorf("demo database: %w", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+pq.QuoteIdentifier(name)+" WITH (FORCE)"); err != nil {
		return "", fmt.Errorf("demo database: cannot drop the old %s on %s: %w", name, u.Host, err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

// demoConfig points the poller and the outbox at the embedded servers and fills the
// settings a real deployment must choose itself.
func (a *app) demoConfig(imapSrv *demo.IMAPServer, sink *demo.SMTPSink) error {
	c := &a.cfg
	c.Outbox.SMTP = "smtp://" + sink.Addr + "?tls=none"
	c.Outbox.SMTPPassword = ""
	if c.Outbox.From == "" {
		c.Outbox.From = demoMailFrom
	}
	if c.ReplyAddress == "" {
		c.ReplyAddress = demoSupport
	}
	if c.Mail.TrustedAuthservIDs == "" {
		// The demo's replies carry a verdict the demo believes.
		c.Mail.TrustedAuthservIDs = demo.AuthservID
	}
	if c.TokenKey == "" {
		// A fresh key each run: the demo's reply tokens need not outlive it.
		c.TokenKey = rand.Text() + rand.Text()
	}
	if c.Web.HTTP == "" {
		return fmt.Errorf("%w: the demo needs the web page: give --http an address", errUsage)
	}
	if c.BaseURL == "" {
		c.BaseURL = "http://" + c.Web.HTTP
	}
	// The demo's page is plain http on loopback, where Secure cookies would not stick.
	c.Web.InsecureCookies = true
	return a.demoMailbox(imapSrv)
}

// seedDemo adds the org, its customer, a staff owner and the cases, and returns the
// cases.
func (a *app) seedDemo(ctx context.Context, st *postgres.Store, rep *demoReport) ([]demo.Case, error) {
	org, err := st.AddOrg(ctx, demoOrg, demoDomain)
	if err != nil {
		return nil, err
	}
	by, err := a.cliActor(ctx, "")
	if err != nil {
		return nil, err
	}
	cust, custPW, err := casebook.AddAccount(ctx, st, by, casebook.NewAccount{OrgID: &org.ID, Email: demoCustomer, Name: "Alice Example"}, a.cfg.MailDomain)
	if err != nil {
		return nil, err
	}
	staff, staffPW, err := casebook.AddAccount(ctx, st, by, casebook.NewAccount{Email: demoStaff, Name: "Sam Support", Staff: true}, a.cfg.MailDomain)
	if err != nil {
		return nil, err
	}
	rep.TemporaryPassword, rep.StaffPassword = custPW, staffPW
	rep.Customer, rep.Staff = cust.Email, staff.Email
	var cases []demo.Case
	for _, subject := range demoCases {
		c, err := st.OpenCase(ctx, postgres.NewCase{OrgID: org.ID, RequesterID: cust.ID, OwnerID: staff.ID, Subject: subject}, a.openedCaseMail)
		if err != nil {
			return nil, err
		}
		ref := a.refs().Format(c.Number)
		cases = append(cases, demo.Case{Ref: ref, Subject: c.Subject})
		rep.Cases = append(rep.Cases, ref)
	}
	return cases, nil
}

// deliverDemoMail puts the customer's replies, then the person's own mail, into the
// demo mailbox, and returns how many messages it delivered.
func deliverDemoMail(imapSrv *demo.IMAPServer, cases []demo.Case, own [][]byte) (int, error) {
	from := &mail.Address{Name: "Alice Example", Address: demoCustomer}
	to := &mail.Address{Name: "Acme Support", Address: demoSupport}
	n := 0
	at := time.Now().Add(-time.Hour)
	for i, r := range demo.Replies(cases) {
		raw, err := demo.Compose(r, from, to, at.Add(time.Duration(i)*time.Minute), casebook.NewMessageID(demoDomain))
		if err != nil {
			return 0, err
		}
		raw = demo.Stamp(raw, demoDomain)
		if err := imapSrv.Append("INBOX", raw, at); err != nil {
			return 0, err
		}
		n++
	}
	for _, raw := range own {
		if err := imapSrv.Append("INBOX", raw, time.Now()); err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}

// waitForDemo waits until every delivered message went to a case or the quarantine
// and every owner notification queued for them was sent, or demoSettle passes. When
// the components stop first, it returns their result with stopped set.
func waitForDemo(ctx context.Context, activity func(context.Context) (postgres.Activity, error), delivered int, done <-chan error) (act postgres.Activity, stopped bool, err error) {
	deadline := time.After(demoSettle)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		act, err := activity(ctx)
		if err != nil {
			return act, false, err
		}
		if act.Updates+act.Quarantined+act.Ignored >= delivered && act.MailsSent >= act.MailsQueued {
			return act, false, nil
		}
		select {
		case err := <-done:
			return act, true, err
		case <-deadline:
			// Report what happened so far rather than nothing: the log says why.
			return act, false, nil
		case <-tick.C:
		}
	}
}

func (r demoReport) human(delivered int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "casebook demo is running (database %s)\n\n", r.Database)
	fmt.Fprintf(&b, "%d customer mails delivered to the demo mailbox: %s\n", delivered, r.Summary)
	fmt.Fprintf(&b, "cases: %s\n", strings.Join(r.Cases, ", "))
	fmt.Fprintf(&b, "mail casebook sent is in %s\n\n", r.MailDir)
	fmt.Fprintf(&b, "web page: %s\n", r.Web)
	fmt.Fprintf(&b, "  customer: %s   temporary password: %s\n", r.Customer, r.TemporaryPassword)
	fmt.Fprintf(&b, "  staff:    %s   temporary password: %s\n", r.Staff, r.StaffPassword)
	fmt.Fprintf(&b, "  each temporary password works once: the page then asks for a new password\n")
	if r.Admin != "" {
		fmt.Fprintf(&b, "metrics: %s\n", r.Admin)
	}
	fmt.Fprintf(&b, "\nCtrl-C stops the demo.")
	return b.String()
}
