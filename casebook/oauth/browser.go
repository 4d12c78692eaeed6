package oauth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"golang.org/x/oauth2"
)

// BrowserLogin runs the authorisation code grant for a native app (RFC 8252): it
// listens on listen (a loopback address; port 0 picks one), hands show the
// provider's sign-in URL, which redirects the browser back to that listener with a
// code, and redeems the code with its PKCE verifier (RFC 7636) for a refresh token.
// Google allows its mail scope only this way, not through the device grant. It waits
// until the browser comes back or ctx ends. The caller stores the token.
func BrowserLogin(ctx context.Context, acct Account, opt Options, listen string, show func(signInURL string) error) (refreshToken string, granted []string, err error) {
	if opt.HTTPClient == nil {
		opt.HTTPClient = defaultHTTPClient()
	}
	cfg, err := config(acct)
	if err != nil {
		return "", nil, err
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil || !isLoopback(host) {
		return "", nil, fmt.Errorf("oauth login: listen on %q: want a loopback address and port, as 127.0.0.1:8400", listen)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return "", nil, fmt.Errorf("oauth login: %w", err)
	}
	defer ln.Close()
	cfg.RedirectURL = "http://" + ln.Addr().String() + "/"
	state, verifier := rand.Text(), oauth2.GenerateVerifier()
	opts := []oauth2.AuthCodeOption{oauth2.AccessTypeOffline, oauth2.S256ChallengeOption(verifier)}
	if acct.Provider == Google {
		// Google hands out a refresh token only at a consent, not at a silent sign-in.
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "consent"))
	}
	if err := show(cfg.AuthCodeURL(state, opts...)); err != nil {
		return "", nil, err
	}
	code, err := awaitCode(ctx, ln, state)
	if err != nil {
		return "", nil, err
	}
	tok, err := cfg.Exchange(context.WithValue(ctx, oauth2.HTTPClient, opt.HTTPClient), code, oauth2.VerifierOption(verifier))
	if err != nil {
		return "", nil, fmt.Errorf("oauth login: %w", refreshError(acct, err))
	}
	return signedIn(acct, tok)
}

// awaitCode serves the redirect on ln until one carries state, and returns its code.
// A request without the state (another page on the machine guessing the port) is
// refused and the wait goes on.
func awaitCode(ctx context.Context, ln net.Listener, state string) (string, error) {
	type answer struct {
		code string
		err  error
	}
	answers := make(chan answer, 1)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("state") != state {
			http.Error(w, "casebook: this is not the sign-in casebook started.", http.StatusBadRequest)
			return
		}
		var a answer
		switch {
		case q.Get("error") == "access_denied":
			a.err = errors.New("oauth login: access was denied in the browser: sign in again and accept")
		case q.Get("error") != "":
			a.err = fmt.Errorf("oauth login: the provider answered %s: %s", q.Get("error"), q.Get("error_description"))
		case q.Get("code") == "":
			a.err = errors.New("oauth login: the provider sent the browser back without a code")
		default:
			a.code = q.Get("code")
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if a.err != nil {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintln(w, "casebook: the sign-in did not succeed; the terminal says why.")
		} else {
			fmt.Fprintln(w, "casebook: signed in. You can close this tab.")
		}
		select {
		case answers <- a:
		default:
		}
	})}
	go srv.Serve(ln)
	defer func() {
		// The page that brought the answer is still being written: Close would cut it
		// off, and the browser would show a broken page instead of where to look.
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			srv.Close()
		}
	}()
	select {
	case a := <-answers:
		return a.code, a.err
	case <-ctx.Done():
		return "", fmt.Errorf("oauth login: %w", ctx.Err())
	}
}
