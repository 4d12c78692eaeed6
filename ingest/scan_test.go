package ingest_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/clamav"
	"github.com/casebookhq/casebook/casebook/clamav/clamdtest"
	"github.com/casebookhq/casebook/ingest"
	"github.com/casebookhq/casebook/ingest/mail"
)

// TestProcessMalware runs mail with attachments past a real clamd: an infected
// attachment quarantines the mail with the reason "malware" and the signature, and
// a scanner that cannot answer leaves it for a retry (an error, nothing recorded).
func TestProcessMalware(t *testing.T) {
	srv := clamdtest.Start(t)
	down := clamdtest.Unreachable(t)
	tests := []struct {
		name   string
		clamd  string
		files  []file
		want   ingest.Disposition
		reason string
		retry  bool
	}{
		{name: "clean attachment", clamd: srv.Addr, files: []file{{"scan.pdf", "application/pdf", pdf}}, want: ingest.Processed},
		{name: "EICAR beside a clean file", clamd: srv.Addr, files: []file{{"scan.pdf", "application/pdf", pdf}, {"eicar.com", "application/octet-stream", []byte(clamdtest.EICAR)}},
			want: ingest.Quarantined, reason: `malware: ` + clamdtest.Signature + ` found in "eicar.com"`},
		{name: "clamd down", clamd: down, files: []file{{"scan.pdf", "application/pdf", pdf}}, retry: true},
		{name: "clamd down, no attachment", clamd: down, want: ingest.Processed},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, mail.Limits{MaxAttachmentSize: 1 << 20})
			c, err := clamav.Parse(tt.clamd)
			if err != nil {
				t.Fatal(err)
			}
			f.svc = casebook.NewService(f.st, f.blobs, casebook.Options{MaxFileSize: 1 << 20, Scanner: c, MalwareLog: f.st})
			f.p = ingest.NewProcessor(f.svc, f.st, f.blobs, ingest.ProcessorOptions{ReplyAddress: replyAddress, Tokens: f.signer})
			m := msg{headers: []string{"From: alice@acme.example", "To: " + f.tokenAddress(t, f.c.Number, f.contact.ID),
				"Subject: scans", fmt.Sprintf("Message-ID: <s%d@acme.example>", i)}, body: "attached", files: tt.files}
			ctx := t.Context()
			loc := ingest.Location{Mailbox: "INBOX", UIDValidity: 7, UID: 1}
			rep, err := f.p.Handle(ctx, loc, bytes.NewReader(m.bytes()))
			if tt.retry {
				if !errors.Is(err, casebook.ErrScanUnavailable) {
					t.Fatalf("Handle = %+v, %v; want ErrScanUnavailable", rep.Result, err)
				}
				if cp, _ := f.st.Checkpoint(ctx, ingest.CheckpointChannel, ingest.CheckpointKey(loc)); cp != "" {
					t.Errorf("checkpoint advanced to %q: the mail would not be retried", cp)
				}
			} else if err != nil || rep.Disposition != tt.want || !strings.HasPrefix(rep.Reason, tt.reason) {
				t.Fatalf("Handle = %+v, %v; want %s %q", rep.Result, err, tt.want, tt.reason)
			}
			items, err := f.st.Quarantine(ctx, casebook.QuarantineFilter{All: true})
			if err != nil {
				t.Fatal(err)
			}
			if n := len(items); (tt.want == ingest.Quarantined) != (n == 1) || n > 1 {
				t.Errorf("%d quarantine rows", n)
			}
			_, err = f.st.UpdateIDByExternalID(ctx, casebook.SourceEmail, rep.ExternalID)
			if stored := err == nil; stored != (tt.want == ingest.Processed) {
				t.Errorf("update stored = %v (%v)", stored, err)
			}
		})
	}
}
