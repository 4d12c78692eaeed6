package dovecottest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

func TestServer(t *testing.T) {
	s := Start(t)
	s.AddUser("alice", "secret")
	msg := []byte("From: a@example.com\r\nSubject: hi\r\n\r\nhello\r\n")
	uid := s.Append("alice", "INBOX", msg)
	if uid == 0 {
		t.Fatal("append returned no UID (UIDPLUS)")
	}
	if n := s.Messages("alice", "INBOX"); n != 1 {
		t.Fatalf("messages = %d, want 1", n)
	}
	c := s.Dial("alice")
	if !c.Caps().Has(imap.CapIdle) || !c.Caps().Has(imap.CapMove) || !c.Caps().Has(imap.CapUIDPlus) {
		t.Errorf("caps = %v, want IDLE, MOVE and UIDPLUS", c.Caps())
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	c.Logout().Wait()

	s.SetUIDValidity("alice", "INBOX", sel.UIDValidity+7)
	s.Restart()
	c = s.Dial("alice")
	sel2, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel2.UIDValidity != sel.UIDValidity+7 {
		t.Errorf("uidvalidity = %d, want %d", sel2.UIDValidity, sel.UIDValidity+7)
	}
	if sel2.NumMessages != 1 {
		t.Errorf("after restart: %d messages, want 1", sel2.NumMessages)
	}
	s.Kick("alice")
	select {
	case <-c.Closed():
	case <-time.After(10 * time.Second):
		t.Error("kick did not close the connection")
	}
}

func TestProxyCut(t *testing.T) {
	s := Start(t)
	s.AddUser("bob", "pw")
	body := make([]byte, 200<<10)
	for i := range body {
		body[i] = 'a' + byte(i%26)
		if i%76 == 75 {
			body[i] = '\n'
		}
	}
	s.Append("bob", "INBOX", fmt.Appendf(nil, "Subject: big\r\n\r\n%s\r\n", body))
	p := NewProxy(t, s.Addr())
	c := dialLogin(t, p.Addr(), "bob", "pw", nil)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	p.CutAfter(50 << 10)
	// A cut inside a literal shows only as a short read: go-imap's literal reader
	// takes the EOF for the literal's end. The client must then be closed rather than
	// read on (Next would read the broken literal again, racing its reader goroutine).
	cmd := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
	var short bool
	if msg := cmd.Next(); msg != nil {
		for item := msg.Next(); item != nil; item = msg.Next() {
			if body, ok := item.(imapclient.FetchItemDataBodySection); ok {
				n, _ := io.Copy(io.Discard, body.Literal)
				if short = n < body.Literal.Size(); short {
					break
				}
			}
		}
	}
	c.Close()
	if !short {
		t.Fatal("fetch through a cut connection read the whole literal")
	}
	if p.Cuts() != 1 {
		t.Errorf("cuts = %d, want 1", p.Cuts())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c2, err := imapclient.DialInsecure(p.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.Login("bob", "pw").Wait(); err != nil {
		t.Fatalf("login after the cut: %v", err)
	}
	if err := s.WaitMessages(ctx, "bob", "INBOX", 1); err != nil {
		t.Fatal(err)
	}
}

// bearer is a minimal SASL XOAUTH2 client for the test.
type bearer struct{ user, token string }

func (b bearer) Start() (string, []byte, error) {
	return "XOAUTH2", []byte("user=" + b.user + "\x01auth=Bearer " + b.token + "\x01\x01"), nil
}
func (b bearer) Next([]byte) ([]byte, error) { return []byte{}, nil }

func TestOAuth2(t *testing.T) {
	var asked atomic.Int32
	is := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		r.ParseForm()
		if r.PostForm.Get("token") == "good" {
			fmt.Fprint(w, `{"active": true, "username": "carol"}`)
			return
		}
		fmt.Fprint(w, `{"active": false}`)
	}))
	t.Cleanup(is.Close)
	s := StartWith(t, Options{IntrospectionURL: is.URL + "/introspect"})
	s.AddUser("carol", "pw")
	for _, tt := range []struct {
		token string
		ok    bool
	}{{"good", true}, {"bad", false}} {
		c, err := imapclient.DialInsecure(s.Addr(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if !c.Caps().Has(imap.Cap("AUTH=XOAUTH2")) {
			t.Fatalf("caps %v lack AUTH=XOAUTH2", c.Caps())
		}
		err = c.Authenticate(bearer{"carol", tt.token})
		if (err == nil) != tt.ok {
			t.Errorf("token %s: login error %v", tt.token, err)
		}
		c.Close()
	}
	if asked.Load() < 2 {
		t.Errorf("introspection asked %d times", asked.Load())
	}
	// Password logins still work beside OAuth.
	s.Dial("carol").Logout().Wait()
}
