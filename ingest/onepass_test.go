package ingest_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/ingest"
	"github.com/casebookhq/casebook/ingest/mail"
)

// badAttachment is a mail whose attachment is not valid base64: only decoding it
// finds that.
func badAttachment(headers ...string) []byte {
	return []byte(strings.Join(headers, "\r\n") + "\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n" +
		"--x\r\nContent-Type: text/plain\r\n\r\nthe scan\r\n" +
		"--x\r\nContent-Type: application/pdf; name=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0x=LjQK!!!!abc=def\r\n--x--\r\n")
}

// The decision needs only the headers: a refused mail is quarantined for its
// reason, whatever its attachments hold, and costs its raw copy and nothing more.
// A mail that is added has its attachments decoded once, on their way into the
// store, and a fault found there is quarantined with the parser's own sentence.
func TestAttachmentsDecodedOnlyForMailToAdd(t *testing.T) {
	f := newFixture(t, mail.Limits{MaxAttachmentSize: 1 << 20})
	tok := f.tokenAddress(t, f.c.Number, f.contact.ID)
	tests := []struct {
		name      string
		raw       []byte
		want      ingest.Result
		reason    string
		newBlobs  int
		matchedBy string
	}{
		{
			name: "refused by the sender policy",
			raw:  badAttachment("From: mallory@other.example", "To: support@support.example", "Subject: Re: "+f.ref(), "Message-ID: <bad1@other.example>"),
			want: ingest.Result{Disposition: ingest.Quarantined, Code: ingest.CodeSenderNotVerified, Case: f.ref()}, newBlobs: 1,
			matchedBy: ingest.MatchedBySubject,
		},
		{
			name: "no case",
			raw: (msg{headers: []string{"From: alice@acme.example", "Subject: hello", "Message-ID: <bad2@acme.example>"},
				body: "x", files: []file{{"big.bin", "application/octet-stream", make([]byte, 1<<20+1)}}}).bytes(),
			want: ingest.Result{Disposition: ingest.Quarantined, Code: ingest.CodeNoCaseRef}, newBlobs: 1, matchedBy: ingest.MatchedBySubject,
		},
		{
			name: "added, but the attachment is badly encoded",
			raw:  badAttachment("From: alice@acme.example", "To: "+tok, "Subject: scan", "Message-ID: <bad3@acme.example>"),
			want: ingest.Result{Disposition: ingest.Quarantined, Code: ingest.CodeMalformed, Case: f.ref()},
			// The raw copy; the attachment's bytes fail before they are stored.
			reason: "malformed message: illegal base64 data at input byte 8", newBlobs: 1, matchedBy: ingest.MatchedByToken,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := countBlobs(t, f)
			rep, err := f.p.Handle(t.Context(), ingest.Location{}, bytes.NewReader(tt.raw))
			if err != nil {
				t.Fatal(err)
			}
			got := rep.Result
			if tt.reason != "" && got.Reason != tt.reason {
				t.Errorf("reason %q, want %q", got.Reason, tt.reason)
			}
			got.Reason = ""
			if got != tt.want || rep.MatchedBy != tt.matchedBy {
				t.Errorf("result %+v matched by %q, want %+v by %q (%s)", got, rep.MatchedBy, tt.want, tt.matchedBy, rep.Reason)
			}
			if n := countBlobs(t, f) - before; n != tt.newBlobs {
				t.Errorf("%d new blobs, want %d", n, tt.newBlobs)
			}
		})
	}
}

// The report of an added mail lists the files as the store measured them.
func TestReportListsStoredFiles(t *testing.T) {
	f := newFixture(t, mail.Limits{})
	m := msg{headers: []string{"From: alice@acme.example", "To: " + f.tokenAddress(t, f.c.Number, f.contact.ID), "Subject: scan", "Message-ID: <listed@acme.example>"},
		body: "here", files: []file{{"scan.pdf", "application/octet-stream", pdf}}}
	rep, err := f.p.Handle(t.Context(), ingest.Location{}, bytes.NewReader(m.bytes()))
	if err != nil || rep.Disposition != ingest.Processed {
		t.Fatalf("%+v, %v", rep, err)
	}
	sum := sha256.Sum256(pdf)
	want := []mail.Attachment{{Filename: "scan.pdf", ContentType: "application/pdf", Size: int64(len(pdf)), SHA256: hex.EncodeToString(sum[:])}}
	if len(rep.Attachments) != 1 || rep.Attachments[0] != want[0] {
		t.Errorf("attachments %+v, want %+v", rep.Attachments, want)
	}
}

func countBlobs(t *testing.T, f *fixture) int {
	t.Helper()
	n := 0
	if err := f.blobs.Backend().Walk(t.Context(), func(casebook.BlobInfo) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}
