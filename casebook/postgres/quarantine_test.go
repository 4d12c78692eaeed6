package postgres_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/postgres"
)

func TestQuarantine(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	cp := casebook.Checkpoint{Channel: "imap", Key: "INBOX;uidvalidity=1", Value: "9"}
	u := casebook.Update{
		Source: casebook.SourceEmail, ExternalID: "abc <m@x>", CaseNumber: f.c.Number,
		Author: casebook.Author{Kind: casebook.IdentityEmail, Value: "eve@other.test"}, Body: "hello",
		Meta:       map[string]string{"message_id": "m@x", "subject": "Re: CASE-1", "raw_blob": "k", "matched_by": "subject"},
		Checkpoint: &cp,
	}
	id, err := f.st.AddQuarantine(ctx, string(casebook.QuarantineKindQuarantined), "not_allowed", "not allowed", u)
	if err != nil {
		t.Fatal(err)
	}
	// The same mail again (a second copy in the mailbox) keeps the first row.
	cp2 := cp
	cp2.Value = "10"
	u.Checkpoint = &cp2
	if again, err := f.st.AddQuarantine(ctx, string(casebook.QuarantineKindQuarantined), "not_allowed", "not allowed", u); err != nil || again != id {
		t.Fatalf("second record: %d, %v; want %d", again, err, id)
	}
	if v, _ := f.st.Checkpoint(ctx, "imap", cp.Key); v != "10" {
		t.Errorf("checkpoint %q, want 10", v)
	}
	if _, err := f.st.AddQuarantine(ctx, string(casebook.QuarantineKindIgnored), "auto_reply", "auto-reply", casebook.Update{Source: casebook.SourceEmail, ExternalID: "ooo"}); err != nil {
		t.Fatal(err)
	}

	it, err := f.st.QuarantineByID(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	want := casebook.QuarantineItem{ID: id, Kind: "quarantined", Source: casebook.SourceEmail, ExternalID: "abc <m@x>", ReasonCode: "not_allowed", Reason: "not allowed",
		MessageID: "m@x", Sender: "eve@other.test", Subject: "Re: CASE-1", CaseNumber: &f.c.Number, RawBlob: "k", Body: "hello",
		Meta: u.Meta, Status: "pending"}
	if diff := cmp.Diff(want, it, cmp.FilterPath(func(p cmp.Path) bool {
		n := p.Last().String()
		return n == ".CreatedAt" || n == ".MetaJSON"
	}, cmp.Ignore())); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if items, _ := f.st.Quarantine(ctx, casebook.QuarantineFilter{}); len(items) != 1 {
		t.Errorf("pending queue has %d rows, want 1 (ignored mail is not in it)", len(items))
	}
	if items, _ := f.st.Quarantine(ctx, casebook.QuarantineFilter{All: true}); len(items) != 2 {
		t.Errorf("--all has %d rows, want 2", len(items))
	}

	audit := casebook.AuditEntry{Action: "quarantine_release", Object: "quarantine:1", Outcome: "success"}
	for _, step := range []struct {
		status casebook.QuarantineStatus
		want   error
	}{
		{casebook.QuarantineReleased, nil},
		{casebook.QuarantineReleased, casebook.ErrAlreadyResolved},
		{casebook.QuarantineDropped, casebook.ErrAlreadyResolved},
		{casebook.QuarantinePending, casebook.ErrInvalidInput},
	} {
		err := f.st.ResolveQuarantine(ctx, casebook.QuarantineResolution{ID: id, Status: step.status, By: &f.owner.ID, Audit: audit})
		if !errors.Is(err, step.want) {
			t.Errorf("resolve %s: %v, want %v", step.status, err, step.want)
		}
	}
	if items, _ := f.st.Quarantine(ctx, casebook.QuarantineFilter{}); len(items) != 0 {
		t.Errorf("released mail still queued: %+v", items)
	}
	if it, _ := f.st.QuarantineByID(ctx, id); it.ResolvedBy == "" || it.Status != casebook.QuarantineReleased {
		t.Errorf("released row: status %s by %q", it.Status, it.ResolvedBy)
	}
	if rows, err := f.st.AuditLog(ctx, postgres.AuditFilter{}); err != nil || len(rows) != 1 {
		n := len(rows)
		t.Errorf("%d audit rows (%v), want 1: one per decision, none for the refused ones", n, err)
	}
	if err := f.st.ResolveQuarantine(ctx, casebook.QuarantineResolution{ID: 999, Status: casebook.QuarantineDropped, Audit: audit}); !errors.Is(err, casebook.ErrNotFound) {
		t.Errorf("unknown id: %v", err)
	}
}

func TestCaseNumbersByMessageIDs(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	second, err := f.st.OpenCase(ctx, postgres.NewCase{OrgID: f.org.ID, RequesterID: f.customer.ID, OwnerID: f.owner.ID, Subject: "Second"})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []casebook.OutboxMail{
		{Kind: casebook.MailCaseEmail, CaseID: &f.c.ID, Recipient: "a@acme.test", MessageID: "<one@s>", Data: casebook.CaseEmail{Case: "CASE-000001"}},
		{Kind: casebook.MailCaseEmail, CaseID: &f.c.ID, Recipient: "a@acme.test", MessageID: "<two@s>", Data: casebook.CaseEmail{Case: "CASE-000001"}},
		{Kind: casebook.MailCaseEmail, CaseID: &second.ID, Recipient: "a@acme.test", MessageID: "<three@s>", Data: casebook.CaseEmail{Case: "CASE-000002"}},
		{Kind: casebook.MailTemporaryPassword, Recipient: "a@acme.test", MessageID: "<pw@s>", Data: casebook.TemporaryPasswordMail{Password: "p"}},
	} {
		if err := f.st.Enqueue(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		ids  []string
		want []int64
	}{
		{[]string{"<one@s>"}, []int64{f.c.Number}},
		{[]string{"<three@s>", "<x@y>", "<one@s>", "<two@s>"}, []int64{second.Number, f.c.Number}},
		{[]string{"<pw@s>"}, []int64{}},
		{[]string{"", "<>"}, []int64{}},
		{nil, []int64{}},
	}
	for _, tt := range tests {
		got, err := f.st.CaseNumbersByMessageIDs(ctx, tt.ids)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%v (-want +got):\n%s", tt.ids, diff)
		}
	}
}
