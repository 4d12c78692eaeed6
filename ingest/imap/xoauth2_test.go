package imap_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-sasl"
)

// oauthSession adds XOAUTH2, as Gmail and Microsoft 365 speak it, to the in-memory
// server: one initial response, and on failure a JSON challenge that the client must
// answer with an empty line before the final NO.
type oauthSession struct {
	imapserver.Session
	token string
}

func (s *oauthSession) AuthenticateMechanisms() []string { return []string{"XOAUTH2"} }

func (s *oauthSession) Authenticate(mech string) (sasl.Server, error) {
	failed := false
	return saslServer(func(resp []byte) ([]byte, bool, error) {
		if failed {
			return nil, true, errors.New("invalid credentials")
		}
		fields := strings.Split(string(resp), "\x01")
		if len(fields) == 4 && fields[0] == "user=alice" && fields[1] == "auth=Bearer "+s.token {
			return nil, true, s.Session.Login("alice", "pw")
		}
		failed = true
		return []byte(`{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}`), false, nil
	}), nil
}

type saslServer func([]byte) ([]byte, bool, error)

func (f saslServer) Next(resp []byte) ([]byte, bool, error) { return f(resp) }

func startOAuthMem(t testing.TB, token string) string {
	mem := aliceMem(t)
	// The wrapper hides the session's MOVE.
	return serveMem(t, withoutMove, func() imapserver.Session { return &oauthSession{Session: mem.NewSession(), token: token} })
}

func TestXOAUTH2(t *testing.T) {
	e := newEnv(t)
	addr := startOAuthMem(t, "ya29.good")
	s := &memServer{addr: addr}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("ya29.stale\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	url := "imap://alice@" + addr + "/INBOX?tls=none&auth=xoauth2&password_file=" + tokenFile
	p, _ := e.startPoller(t, url, nil)
	eventually(t, "a refused token shows in readiness", func() (bool, string) {
		err := p.Ready(t.Context())
		return err != nil && strings.Contains(err.Error(), `"status":"401"`), "ready"
	})

	// The token file is read at every login: a refreshed token is picked up.
	if err := os.WriteFile(tokenFile, []byte("ya29.good\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.appendOAuth(t, e.reply("o1", 0))
	eventually(t, "mail handled after the token was refreshed", func() (bool, string) {
		u, _ := e.updates(t)
		return u == 1 && p.Ready(t.Context()) == nil, "no update yet"
	})
}
