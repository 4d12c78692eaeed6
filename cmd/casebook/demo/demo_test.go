package demo_test

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-smtp"
	"github.com/google/go-cmp/cmp"

	"github.com/casebookhq/casebook/cmd/casebook/demo"
)

var discard = slog.New(slog.DiscardHandler)

func TestReadMbox(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr bool
	}{
		{"two messages", "From a@x Mon Jan  5 10:00:00 2026\nSubject: one\n\nbody\n\nFrom b@x Mon Jan  5 11:00:00 2026\nSubject: two\n\n>From the start\n>>From kept once\n",
			[]string{"Subject: one\n\nbody\n", "Subject: two\n\nFrom the start\n>From kept once\n"}, false},
		{"CRLF", "From a@x\r\nSubject: s\r\n\r\nb\r\n\r\nFrom b@x\r\nX: y\r\n", []string{"Subject: s\r\n\r\nb\r\n", "X: y\r\n"}, false},
		{"empty", "", nil, false},
		{"not an mbox", "Subject: hi\n\nbody\n", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs, err := demo.ReadMbox(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			var got []string
			for _, m := range msgs {
				got = append(got, string(m))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzReadMbox(f *testing.F) {
	f.Add([]byte("From a@x\nSubject: s\n\n>From b\n\nFrom c@x\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		msgs, err := demo.ReadMbox(bytes.NewReader(in))
		if err != nil {
			return
		}
		n := 0
		for _, m := range msgs {
			n += len(m)
		}
		if n > len(in) {
			t.Errorf("messages hold %d bytes from %d of input", n, len(in))
		}
	})
}

func TestReadEMLDir(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{"b.eml": "Subject: b\n\n", "a.eml": "Subject: a\n\n", "notes.txt": "x"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := demo.ReadEMLDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([][]byte{[]byte("Subject: a\n\n"), []byte("Subject: b\n\n")}, msgs); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, err := demo.ReadEMLDir(t.TempDir()); err == nil {
		t.Error("an empty directory gave no error")
	}
}

// TestReplies composes the replies and parses them back as a mail client would.
func TestReplies(t *testing.T) {
	cases := []demo.Case{{"CASE-000001", "Lab results"}, {"CASE-000002", "Insurance"}, {"CASE-000003", "Readings"}}
	from := &mail.Address{Name: "Alice", Address: "alice@acme.example"}
	to := &mail.Address{Address: "support@support.example"}
	files := 0
	for i, r := range demo.Replies(cases) {
		raw, err := demo.Compose(r, from, to, time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC), "<r"+string(rune('1'+i))+"@acme.example>")
		if err != nil {
			t.Fatal(err)
		}
		mr, err := mail.CreateReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		subj, _ := mr.Header.Subject()
		if want := "Re: [" + cases[i].Ref + "] " + cases[i].Subject; subj != want {
			t.Errorf("subject %q, want %q", subj, want)
		}
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if ah, ok := p.Header.(*mail.AttachmentHeader); ok {
				name, _ := ah.Filename()
				body, _ := io.ReadAll(p.Body)
				if name == "" || len(body) == 0 {
					t.Errorf("attachment %q of %d bytes", name, len(body))
				}
				files++
			}
		}
	}
	if files != 5 {
		t.Errorf("%d attachments, want 5", files)
	}
}

func TestIMAPServer(t *testing.T) {
	s, err := demo.StartIMAP("support@support.example", "pw", []string{"INBOX", "Processed"}, discard)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Append("INBOX", []byte("Subject: hi\r\n\r\nbody\r\n"), time.Now()); err != nil {
		t.Fatal(err)
	}
	c, err := imapclient.DialInsecure(s.Addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(s.User, s.Password).Wait(); err != nil {
		t.Fatal(err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages != 1 || !c.Caps().Has(imap.CapMove) {
		t.Errorf("INBOX holds %d messages; caps %v", sel.NumMessages, c.Caps())
	}
	if n, err := s.Count("Processed"); err != nil || n != 0 {
		t.Errorf("Processed: %d, %v", n, err)
	}
}

func TestSMTPSink(t *testing.T) {
	dir := t.TempDir()
	s, err := demo.StartSMTP(dir, discard)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := smtp.Dial(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	msg := "Subject: owner notification\r\n\r\nnew files\r\n"
	if err := c.SendMail("casebook@support.example", []string{"sam@support.example"}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	c.Quit()
	// The sink keeps a mail before it answers the end of DATA.
	got := s.Mail()
	if len(got) != 1 || got[0].From != "casebook@support.example" || string(got[0].Data) != msg {
		t.Fatalf("sink kept %+v", got)
	}
	if b, err := os.ReadFile(got[0].File); err != nil || string(b) != msg {
		t.Errorf("saved file: %q, %v", b, err)
	}
}

func TestSummary(t *testing.T) {
	tests := []struct {
		s    demo.Summary
		want string
	}{
		{demo.Summary{Ingested: 3, Attachments: 5, Notifications: 3}, "3 replies ingested, 5 attachments stored, 3 owner notifications sent"},
		{demo.Summary{Ingested: 1, Attachments: 1, Notifications: 1, Quarantined: 2}, "1 reply ingested, 1 attachment stored, 1 owner notification sent, 2 quarantined"},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}
