package main

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/casebookhq/casebook/casebook/metrics"
	"github.com/casebookhq/casebook/ingest"
)

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
		{res: ingest.Result{Disposition: ingest.Quarantined, Code: ingest.CodeCaseClosed, Reason: "CASE-000001 is closed: open a new case"}},
		{res: ingest.Result{Disposition: ingest.Quarantined, Code: ingest.CodeSenderNotVerified, Reason: "the sender failed authentication"}},
		{err: errors.New("database down")},
	} {
		countingProcessor{next: p, m: m}.Process(context.Background(), loc, strings.NewReader(""))
	}
	rec := httptest.NewRecorder()
	metrics.NewAdmin("", m, nil).Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		`casebook_imap_messages_fetched_total{mailbox="support@acme.test/INBOX"} 4`,
		`casebook_quarantined_total{reason="sender_not_verified"} 1`,
		`casebook_quarantined_total{reason="case_closed"} 1`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
