package postgres_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"casebook/casebook"
	"casebook/casebook/postgres"
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
	id, err := f.st.AddQuarantine(ctx, postgres.QuarantineKindQuarantined, "not_allowed", "not allowed", u)
	if err != nil {
		t.Fatal(err)
	}
	// The same mail again (a second copy in the mailbox) keeps the first row.
	cp2 := cp
	cp2.Value = "10"
	u.Checkpoint = &cp2
	if again, err := f.st.AddQuarantine(ctx, postgres.QuarantineKindQuarantined, "not_allowed", "not allowed", u); err != nil || again != id {
		t.Fatalf("second record: %d, %v; want %d", again, err, id)
	}
	if v, _ := f.st.Checkpoint(ctx, "imap", cp.Key); v != "10" {
		t.Errorf("checkpoint %q, want 10", v)
	}
	if _, err := f.st.AddQuarantine(ctx, postgres.QuarantineKindIgnored, "auto_reply", "auto-reply", casebook.Update{Source: casebook.SourceEmail, ExternalID: "ooo"}); err != nil {
		t.Fatal(err)
	}

	it, err := f.st.QuarantineByID(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	want := postgres.QuarantineItem{ID: id, Kind: "quarantined", Source: casebook.SourceEmail, ExternalID: "abc <m@x>", ReasonCode: "not_allowed", Reason: "not allowed",
		MessageID: "m@x", Sender: "eve@other.test", Subject: "Re: CASE-1", CaseNumber: &f.c.Number, RawBlob: "k", Body: "hello",
		Meta: u.Meta, Status: "pending"}
	if diff := cmp.Diff(want, it, cmp.FilterPath(func(p cmp.Path) bool {
		n := p.Last().String()
		return n == ".CreatedAt" || n == ".MetaJSON"
	}, cmp.Ignore())); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if items, _ := f.st.Quarantine(ctx, postgres.QuarantineFilter{}); len(items) != 1 {
		t.Errorf("pending queue has %d rows, want 1 (ignored mail is not in it)", len(items))
	}
	if items, _ := f.st.Quarantine(ctx, postgres.QuarantineFilter{All: true}); len(items) != 2 {
		t.Errorf("--all has %d rows, want 2", len(items))
	}

	for _, step := range []struct {
		status string
		ok     bool
	}{{"released", true}, {"released", true}, {"dropped", false}, {"pending", false}} {
		err := f.st.ResolveQuarantine(ctx, id, step.status, nil)
		if (err == nil) != step.ok {
			t.Errorf("resolve %s: %v", step.status, err)
		}
	}
	if items, _ := f.st.Quarantine(ctx, postgres.QuarantineFilter{}); len(items) != 0 {
		t.Errorf("released mail still queued: %+v", items)
	}
	if err := f.st.ResolveQuarantine(ctx, 999, "dropped", nil); !errors.Is(err, casebook.ErrNotFound) {
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
