package ingest_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
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

// TestMailReadOnce: when the verdict comes with the header, a mail is decided before
// its parts are read and read once, whatever becomes of it: added with its
// attachments decoded on their way into the store, or refused inside the write path
// with its text kept for the quarantine. Only a file refused before the text is
// reached costs a second read, for that text.
func TestMailReadOnce(t *testing.T) {
	f := newFixture(t, mail.Limits{})
	tok := f.tokenAddress(t, f.c.Number, f.contact.ID)
	big := bytes.Repeat(pdf, 2000)
	exeFirst := []byte("From: alice@acme.example\r\nTo: " + tok + "\r\nSubject: setup\r\nMessage-ID: <o4@acme.example>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n" +
		"--x\r\nContent-Type: application/octet-stream; name=setup.exe\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString(append([]byte("MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00"), make([]byte, 200)...)) + "\r\n" +
		"--x\r\nContent-Type: text/plain\r\n\r\nrun this please\r\n--x--\r\n")
	tests := []struct {
		name  string
		raw   []byte
		want  ingest.Result
		text  string
		reads int64
	}{
		{
			name: "added by its reply token",
			raw: msg{headers: []string{"From: alice@acme.example", "To: " + tok, "Subject: scan", "Message-ID: <o1@acme.example>"},
				body: "see attached", files: []file{{"scan.pdf", "application/pdf", big}}}.bytes(),
			want: ingest.Result{Disposition: ingest.Processed, Case: f.ref()}, reads: 1,
		},
		{
			name: "added by its subject, the sender passed",
			raw: msg{headers: []string{passed("acme.example"), "From: alice@acme.example", "Subject: Re: [" + f.ref() + "] scan", "Message-ID: <o2@acme.example>"},
				body: "see attached", files: []file{{"scan.pdf", "application/pdf", big}}}.bytes(),
			want: ingest.Result{Disposition: ingest.Processed, Case: f.ref()}, reads: 1,
		},
		{
			name: "refused in the write path: not a contact of the case's org",
			raw: msg{headers: []string{"From: mallory@other.example", "To: " + tok, "Subject: scan", "Message-ID: <o3@other.example>"},
				body: "see attached", files: []file{{"scan.pdf", "application/pdf", big}}}.bytes(),
			want: ingest.Result{Disposition: ingest.Quarantined, Code: ingest.CodeNotAllowed, Case: f.ref()}, text: "see attached", reads: 1,
		},
		{
			name: "a program before the text",
			raw:  exeFirst,
			want: ingest.Result{Disposition: ingest.Quarantined, Code: ingest.CodeFileTypeNotAllowed, Case: f.ref()}, text: "run this please", reads: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &countingReader{ReadSeeker: bytes.NewReader(tt.raw)}
			rep, err := f.p.Handle(t.Context(), ingest.Location{}, r)
			if err != nil {
				t.Fatal(err)
			}
			got := rep.Result
			got.Reason = ""
			if got != tt.want {
				t.Errorf("result %+v, want %+v (%s)", got, tt.want, rep.Reason)
			}
			// The sender check reads the header on its own: a few buffers' worth.
			if limit := tt.reads*int64(len(tt.raw)) + 16<<10; r.n > limit {
				t.Errorf("read %d bytes of a %d-byte mail, want at most %d", r.n, len(tt.raw), limit)
			}
			if tt.text == "" {
				return
			}
			var body string
			if err := f.st.DB().Get(&body, `SELECT body FROM quarantine WHERE external_id = $1`, rep.ExternalID); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(body, tt.text) {
				t.Errorf("quarantined with the text %q, want %q in it", body, tt.text)
			}
		})
	}
}
