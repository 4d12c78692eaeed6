package main

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"casebook/casebook/metrics"
	"casebook/ingest"
)

func TestQuarantineReason(t *testing.T) {
	tests := []struct{ reason, want string }{
		{"no case found: no valid reply token, no thread of ours, no case reference in the subject", "no_case_ref"},
		{"the subject names CASE-000009, which does not exist", "case_not_found"},
		{"the subject names CASE-000001, but the sender eve@x.test is not a registered contact of the case's organisation", "not_allowed"},
		{"CASE-000001 is closed: open a new case", "case_closed"},
		{"message is over a limit: 201 MIME parts", "over_limit"},
		{"malformed message: no boundary", "malformed"},
		{`malware: Test-EICAR.UNOFFICIAL found in "does not exist.zip"`, "malware"},
		{"the sender eve@acme.test names CASE-000001, but their casebook account is disabled", "user_disabled"},
		{"something new", "other"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := quarantineReason(tt.reason); got != tt.want {
				t.Errorf("quarantineReason(%q) = %q, want %q", tt.reason, got, tt.want)
			}
		})
	}
}

type fixedProcessor struct {
	res ingest.Result
	err error
}

func (f fixedProcessor) Process(context.Context, ingest.Location, io.ReadSeeker) (ingest.Result, error) {
	return f.res, f.err
}

func TestCountingProcessor(t *testing.T) {
	m := metrics.New()
	loc := ingest.Location{Mailbox: "support@acme.test/INBOX", UID: 7}
	for _, p := range []fixedProcessor{
		{res: ingest.Result{Disposition: ingest.Processed, Case: "CASE-000001"}},
		{res: ingest.Result{Disposition: ingest.Quarantined, Reason: "CASE-000001 is closed: open a new case"}},
		{err: errors.New("database down")},
	} {
		countingProcessor{next: p, m: m}.Process(context.Background(), loc, strings.NewReader(""))
	}
	rec := httptest.NewRecorder()
	metrics.NewAdmin("", m, nil).Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		`casebook_imap_messages_fetched_total{mailbox="support@acme.test/INBOX"} 3`,
		`casebook_quarantined_total{reason="case_closed"} 1`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
