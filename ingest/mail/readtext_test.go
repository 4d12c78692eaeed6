package mail

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// ReadText reads what Parse reads of every corpus message, attachments aside, and
// fails where Parse fails except on a fault inside an attachment, which it does not
// decode.
func TestReadTextCorpus(t *testing.T) {
	files, err := os.ReadDir(filepath.Join("testdata", "corpus"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		t.Run(f.Name(), func(t *testing.T) {
			raw := readCorpus(t, f.Name())
			want, perr := Parse(strings.NewReader(string(raw)), Limits{})
			got, err := ReadText(strings.NewReader(string(raw)), Limits{})
			switch {
			case f.Name() == "bad_base64.eml":
				if err != nil || !errors.Is(perr, ErrMalformed) {
					t.Fatalf("ReadText %v, Parse %v; want nil and malformed", err, perr)
				}
			case (err == nil) != (perr == nil) || (perr != nil && err.Error() != perr.Error()):
				t.Fatalf("ReadText %v, Parse %v", err, perr)
			}
			if len(got.Attachments) != 0 {
				t.Errorf("ReadText listed %d attachments", len(got.Attachments))
			}
			if perr != nil {
				return
			}
			if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(Message{}, "Attachments")); diff != "" {
				t.Errorf("ReadText (-Parse +ReadText):\n%s", diff)
			}
		})
	}
}

func TestReadTextLimits(t *testing.T) {
	lim := Limits{MaxMessageSize: 4096, MaxAttachmentSize: 1024, MaxParts: 10, MaxDepth: 3, MaxHeaderBytes: 512}
	tests := []struct {
		name string
		msg  string
		want error
	}{
		{"depth over the limit", nested(4), ErrLimit},
		{"parts over the limit", manyParts(10), ErrLimit},
		{"message over the limit", "Subject: x\r\n\r\n" + strings.Repeat("a\r\n", 2000), ErrLimit},
		{"header over the limit", "Subject: " + strings.Repeat("a", 600) + "\r\n\r\nx", ErrLimit},
		{"no boundary", "Subject: x\r\nContent-Type: multipart/mixed\r\n\r\nx", ErrMalformed},
		// Left for the pass that decodes the attachment on its way into the store.
		{"attachment over the limit", withAttachment(1025), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ReadText(strings.NewReader(tt.msg), lim)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			if m == nil {
				t.Fatal("no message")
			}
		})
	}
}

// A callback that stores an attachment wraps what went wrong in its own words; the
// walk reports the part's own fault, so that the reason a person reads is the
// parser's sentence and the error still matches its sentinel.
func TestAttachmentsReportThePartsFault(t *testing.T) {
	lim := Limits{MaxAttachmentSize: 1024}
	tests := []struct {
		name string
		msg  string
		want error
	}{
		{"over the limit", withAttachment(1025), ErrLimit},
		{"bad base64", string(readCorpus(t, "bad_base64.eml")), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Attachments(strings.NewReader(tt.msg), lim, func(a Attachment, body io.Reader) error {
				if _, err := io.Copy(io.Discard, body); err != nil {
					return fmt.Errorf("store %q: %w", a.Filename, err)
				}
				return nil
			})
			if !errors.Is(err, tt.want) || strings.Contains(err.Error(), "store") {
				t.Fatalf("error %v, want the part's own %v", err, tt.want)
			}
		})
	}
}
