package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/postgres"
)

// caseView is a case as the CLI prints it; number is the formatted reference.
type caseView struct {
	Number string `json:"number"`
	casebook.Case
}

func (a *app) caseView(c casebook.Case) caseView {
	return caseView{Number: a.refs().Format(c.Number), Case: c}
}

func caseOpenCommand() command {
	var org, requester, owner, subject string
	return command{
		usage: "--org ORG --requester EMAIL --owner STAFF_EMAIL --subject S",
		help:  "open a case and print its number",
		flags: func(fs *flag.FlagSet, _ *app) {
			fs.StringVar(&org, "org", "", "customer organisation")
			fs.StringVar(&requester, "requester", "", "customer who asked (a user of the org)")
			fs.StringVar(&owner, "owner", "", "staff member who owns the case")
			fs.StringVar(&subject, "subject", "", "what the case is about")
		},
		run: func(ctx context.Context, a *app, _ []string) error {
			if org == "" || requester == "" || owner == "" || strings.TrimSpace(subject) == "" {
				return fmt.Errorf("%w: --org, --requester, --owner and --subject are required", errUsage)
			}
			st, err := a.store(ctx)
			if err != nil {
				return err
			}
			o, err := st.OrgByName(ctx, org)
			if err != nil {
				return err
			}
			req, err := st.UserByEmail(ctx, requester)
			if err != nil {
				return err
			}
			own, err := st.UserByEmail(ctx, owner)
			if err != nil {
				return err
			}
			c, err := st.OpenCase(ctx, postgres.NewCase{OrgID: o.ID, RequesterID: req.ID, OwnerID: own.ID, Subject: subject}, a.openedCaseMail)
			if err != nil {
				return err
			}
			v := a.caseView(c)
			return a.print(v, v.Number)
		},
	}
}

func caseListCommand() command {
	var org, status string
	var limit int
	return command{
		usage: "[--org ORG] [--status S] [--limit N]",
		help:  "list cases, most recent activity first",
		flags: func(fs *flag.FlagSet, _ *app) {
			fs.StringVar(&org, "org", "", "only this organisation's cases")
			fs.StringVar(&status, "status", "", "only cases with this status (open, pending, resolved, closed)")
			fs.IntVar(&limit, "limit", 1000, "at most this many cases")
		},
		run: func(ctx context.Context, a *app, _ []string) error {
			st, err := a.store(ctx)
			if err != nil {
				return err
			}
			f := casebook.CaseFilter{Limit: min(limit, 1000)}
			if org != "" {
				o, err := st.OrgByName(ctx, org)
				if err != nil {
					return err
				}
				f.OrgID = o.ID
			}
			if status != "" {
				s, err := casebook.ParseStatus(status)
				if err != nil {
					return err
				}
				f.Statuses = []casebook.Status{s}
			}
			for left := limit; left > 0; {
				f.Limit = min(left, 1000)
				cs, err := st.Cases(ctx, f)
				if err != nil {
					return err
				}
				for _, c := range cs {
					v := a.caseView(c)
					if err := a.print(v, fmt.Sprintf("%s  %-8s %-20s %-28s %s", v.Number, c.Status, c.OrgName, c.Owner, c.Subject)); err != nil {
						return err
					}
				}
				if len(cs) < f.Limit {
					break
				}
				left -= len(cs)
				last := cs[len(cs)-1]
				f.After = &casebook.CaseCursor{UpdatedAt: last.UpdatedAt, ID: last.ID}
			}
			return nil
		},
	}
}

func caseShowCommand() command {
	return command{
		usage: "CASE-000123",
		help:  "show a case with its timeline and attachments (size and SHA-256)",
		run: func(ctx context.Context, a *app, args []string) error {
			n, err := a.caseNumber(args)
			if err != nil {
				return err
			}
			st, err := a.store(ctx)
			if err != nil {
				return err
			}
			c, err := st.CaseByNumber(ctx, n)
			if err != nil {
				return err
			}
			// Staff reads of PHI are audited like the web page's, before anything is shown.
			if err := cliAudit(ctx, st, nil, "case_view", a.refs().Format(c.Number), "success"); err != nil {
				return err
			}
			tl, err := st.Timeline(ctx, c.ID)
			if err != nil {
				return err
			}
			var atts []casebook.Attachment
			for _, e := range tl {
				atts = append(atts, e.Attachments...)
			}
			if atts == nil {
				atts = []casebook.Attachment{}
			}
			out := struct {
				caseView
				Timeline    []casebook.TimelineEntry `json:"timeline"`
				Attachments []casebook.Attachment    `json:"attachments"`
			}{a.caseView(c), tl, atts}
			var b strings.Builder
			fmt.Fprintf(&b, "%s  %s\norg: %s   status: %s   requester: %s   owner: %s\n",
				out.Number, c.Subject, c.OrgName, c.Status, c.Requester, c.Owner)
			for _, e := range tl {
				fmt.Fprintf(&b, "\n%s  %-7s  %s\n", e.CreatedAt.Local().Format(time.DateTime), e.Source, e.Author)
				if body := strings.TrimSpace(e.Body); body != "" {
					fmt.Fprintf(&b, "  %s\n", strings.ReplaceAll(body, "\n", "\n  "))
				}
				for _, at := range e.Attachments {
					fmt.Fprintf(&b, "  [%d] %s  %s  %d bytes  sha256:%s\n", at.ID, at.Filename, at.ContentType, at.Size, at.SHA256)
				}
			}
			return a.print(out, strings.TrimRight(b.String(), "\n"))
		},
	}
}

func caseStatusCommand(change casebook.StatusChange) command {
	var as string
	return command{
		usage: "CASE-000123 [--as STAFF_EMAIL]",
		help:  fmt.Sprintf("%s a case", change),
		flags: func(fs *flag.FlagSet, _ *app) {
			fs.StringVar(&as, "as", "", "staff member who decides (recorded; the OS user otherwise)")
		},
		run: func(ctx context.Context, a *app, args []string) error {
			n, err := a.caseNumber(args)
			if err != nil {
				return err
			}
			d, err := a.desk(ctx, nil)
			if err != nil {
				return err
			}
			by, err := a.cliActor(ctx, as)
			if err != nil {
				return err
			}
			c, err := d.SetStatus(ctx, by, n, change)
			if err != nil {
				return err
			}
			v := a.caseView(c)
			return a.print(v, fmt.Sprintf("%s is %s", v.Number, c.Status))
		},
	}
}
