package outbox

import (
	"bytes"
	"flag"
	"io/fs"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/casebookhq/casebook/casebook"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestRenderEveryTemplate renders each mail kind from a sample row and compares the
// headers that matter and both bodies with testdata/KIND.golden.
func TestRenderEveryTemplate(t *testing.T) {
	signer, err := casebook.NewTokenSigner(bytes.Repeat([]byte("k"), 32))
	if err != nil {
		t.Fatal(err)
	}
	comp, err := newComposer(defaultTemplates(), &mail.Address{Name: "Acme Support", Address: "support@casebook.test"}, testReply, signer, testBaseURL+"/")
	if err != nil {
		t.Fatal(err)
	}
	caseID, userID := int64(7), int64(42)
	samples := map[casebook.OutboxKind][]casebook.OutboxEntry{
		casebook.MailOwnerNotification: {{CaseNumber: 123, OutboxMail: casebook.OutboxMail{
			CaseID: &caseID, UserID: &userID, Recipient: "sam@support.example",
			Data: casebook.OwnerNotification{Case: "CASE-000123", Subject: "Lab results <for> \"review\"", Source: casebook.SourceSlack, Author: "Alice <alice@acme.example>",
				Files: []casebook.NotifiedFile{
					{Name: "scan.pdf", Size: 1234567, ContentType: "application/pdf"},
					{Name: "<script>.txt", Size: 12, ContentType: "text/plain"},
				}},
		}}},
		casebook.MailCaseEmail: {
			{CaseNumber: 123, OutboxMail: casebook.OutboxMail{CaseID: &caseID, UserID: &userID, Recipient: "alice@acme.example",
				Data: casebook.CaseEmail{Case: "CASE-000123", Subject: "Lab results", Event: casebook.CaseOpened}}},
			{CaseNumber: 123, OutboxMail: casebook.OutboxMail{CaseID: &caseID, UserID: &userID, Recipient: "alice@acme.example",
				Data: casebook.CaseEmail{Case: "CASE-000123", Subject: "Lab results", Event: casebook.CaseReply, Author: "Sam",
					Body: "Thanks, we got them.\nCould you also send the <b>referral</b>?", InReplyTo: "<first@casebook.test>"}}},
		},
		casebook.MailTemporaryPassword: {
			{OutboxMail: casebook.OutboxMail{UserID: &userID, Recipient: "alice@acme.example",
				Data: casebook.TemporaryPasswordMail{Password: "correct-horse-battery", ExpiresAt: time.Date(2026, 11, 26, 13, 0, 0, 0, time.UTC), Name: "Alice", Reason: casebook.ReasonReset}}},
			{OutboxMail: casebook.OutboxMail{UserID: &userID, Recipient: "alice@acme.example",
				Data: casebook.TemporaryPasswordMail{Password: "correct-horse-battery", ExpiresAt: time.Date(2026, 11, 26, 13, 0, 0, 0, time.FixedZone("", 3600)), Reason: casebook.ReasonNewAccount}}},
		},
	}
	// Every template file belongs to a kind, and every kind has its samples.
	files, err := fs.Glob(defaultTemplates(), "mail/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(f), ".txt"), ".html")
		if _, ok := samples[casebook.OutboxKind(name)]; !ok && name != "layout" {
			t.Errorf("template %s belongs to no mail kind this test renders", f)
		}
	}
	date := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	for _, kind := range kinds {
		t.Run(string(kind), func(t *testing.T) {
			if len(samples[kind]) == 0 {
				t.Fatal("no sample")
			}
			var got strings.Builder
			for i, e := range samples[kind] {
				e.Kind = kind
				e.MessageID = "<sample@casebook.test>"
				m, err := comp.compose(e, date)
				if err != nil {
					t.Fatal(err)
				}
				p := parse(t, m.msg)
				if i > 0 {
					got.WriteString("\n========\n\n")
				}
				for _, k := range []string{"From", "To", "Reply-To", "Subject", "Date", "Message-Id", "In-Reply-To", "References", "Auto-Submitted", "X-Auto-Response-Suppress"} {
					if v := p.h.Get(k); v != "" {
						if k == "Subject" {
							v, _ = p.h.Subject()
						}
						got.WriteString(k + ": " + v + "\n")
					}
				}
				got.WriteString("\n--- text/plain\n" + p.text + "\n--- text/html\n" + p.html)
			}
			golden := filepath.Join("testdata", string(kind)+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to write it)", err)
			}
			if diff := cmp.Diff(string(want), got.String()); diff != "" {
				t.Errorf("%s differs (-want +got); go test -update rewrites it:\n%s", golden, diff)
			}
		})
	}
}

func TestComposeRefusesIncompleteRows(t *testing.T) {
	comp, err := newComposer(defaultTemplates(), &mail.Address{Address: "support@casebook.test"}, "", nil, testBaseURL)
	if err != nil {
		t.Fatal(err)
	}
	caseID, userID := int64(7), int64(42)
	tests := []struct {
		name string
		e    casebook.OutboxEntry
	}{
		{"unknown kind", casebook.OutboxEntry{OutboxMail: casebook.OutboxMail{Kind: "newsletter", Recipient: "a@example.com"}}},
		{"notification without files", casebook.OutboxEntry{OutboxMail: casebook.OutboxMail{Kind: casebook.MailOwnerNotification, Recipient: "a@example.com",
			Data: casebook.OwnerNotification{Case: "CASE-000001"}}}},
		{"notification without its data", casebook.OutboxEntry{OutboxMail: casebook.OutboxMail{Kind: casebook.MailOwnerNotification, Recipient: "a@example.com"}}},
		{"data of another kind", casebook.OutboxEntry{OutboxMail: casebook.OutboxMail{Kind: casebook.MailOwnerNotification, Recipient: "a@example.com",
			Data: casebook.TemporaryPasswordMail{Password: "x", ExpiresAt: time.Date(2026, 11, 26, 13, 0, 0, 0, time.UTC)}}}},
		{"case email without reply address", casebook.OutboxEntry{CaseNumber: 1, OutboxMail: casebook.OutboxMail{Kind: casebook.MailCaseEmail, CaseID: &caseID, UserID: &userID,
			Recipient: "a@example.com", Data: casebook.CaseEmail{Case: "CASE-000001"}}}},
		{"password without expiry", casebook.OutboxEntry{OutboxMail: casebook.OutboxMail{Kind: casebook.MailTemporaryPassword, Recipient: "a@example.com",
			Data: casebook.TemporaryPasswordMail{Password: "x"}}}},
		{"password expired before sending", casebook.OutboxEntry{OutboxMail: casebook.OutboxMail{Kind: casebook.MailTemporaryPassword, Recipient: "a@example.com",
			Data: casebook.TemporaryPasswordMail{Password: "x", ExpiresAt: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)}}}},
		{"recipient with a name", casebook.OutboxEntry{OutboxMail: casebook.OutboxMail{Kind: casebook.MailTemporaryPassword, Recipient: "Eve <a@example.com>",
			Data: casebook.TemporaryPasswordMail{Password: "x", ExpiresAt: time.Date(2026, 11, 26, 13, 0, 0, 0, time.UTC)}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := comp.compose(tt.e, time.Now()); err == nil || !strings.Contains(err.Error(), errCompose.Error()) {
				t.Errorf("compose = %v, want a compose error", err)
			}
		})
	}
}
