package casebook_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/casebookhq/casebook/casebook"
)

// TestMailDataRoundTrip: each kind's data comes back from its row as the type it was
// queued as.
func TestMailDataRoundTrip(t *testing.T) {
	for _, d := range []casebook.MailData{
		casebook.OwnerNotification{Case: "CASE-000001", Subject: "s", Source: casebook.SourceSlack, Author: "a",
			Files: []casebook.NotifiedFile{{Name: "scan.pdf", Size: 12, ContentType: "application/pdf"}}},
		casebook.CaseEmail{Case: "CASE-000001", Subject: "s", Event: casebook.CaseReply, Author: "Sam", Body: "b", InReplyTo: "<x@y>"},
		casebook.TemporaryPasswordMail{Name: "Alice", Sealed: []string{"sealed"}, ExpiresAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Reason: casebook.ReasonReset},
	} {
		raw, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		got, err := casebook.DecodeMailData(d.MailKind(), raw)
		if err != nil {
			t.Fatalf("%s: %v", d.MailKind(), err)
		}
		if diff := cmp.Diff(d, got); diff != "" {
			t.Errorf("%s (-queued +read):\n%s", d.MailKind(), diff)
		}
	}
	if _, err := casebook.DecodeMailData("newsletter", []byte(`{}`)); !errors.Is(err, casebook.ErrInvalidInput) {
		t.Errorf("unknown kind: %v", err)
	}
	if _, err := casebook.DecodeMailData(casebook.MailTemporaryPassword, []byte(`{"expires_at": "tomorrow"}`)); err == nil {
		t.Errorf("malformed data decoded")
	}
}
