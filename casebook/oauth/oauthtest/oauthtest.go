// Package oauthtest runs a fake OAuth 2.0 provider for tests on loopback: a token
// endpoint (client credentials with a secret or a certificate assertion, refresh
// tokens, the device code grant, authorisation codes with PKCE), a device
// authorisation endpoint (RFC 8628), an authorisation endpoint that consents at once
// and sends the browser back to a loopback redirect (RFC 8252), and a token
// introspection endpoint (RFC 7662) that a mail server such as Dovecot asks whether a
// token is good.
//
// It issues short-lived access tokens, counts every token it issues, and can expire
// them, revoke refresh tokens, rotate refresh tokens, and answer with the error bodies
// Microsoft's and Google's endpoints really send.
package oauthtest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Style is whose error bodies the server answers with.
type Style int

// The styles.
const (
	// Google answers {"error": "...", "error_description": "..."} with terse
	// descriptions ("Token has been expired or revoked.").
	Google Style = iota
	// Microsoft answers Entra ID's shape: an AADSTS code in the description followed by
	// trace lines, and error_codes, trace_id, correlation_id, error_uri.
	Microsoft
)

// Options configure a Server.
type Options struct {
	Style Style
	// ClientID and ClientSecret are the registered client; a request with another
	// client is refused with invalid_client.
	ClientID, ClientSecret string
	// ClientKey, when set, is the public key of the client's certificate: a client
	// assertion signed with its private key authenticates the client too.
	ClientKey *rsa.PublicKey
	// Username is the mailbox every token is for, as introspection reports it.
	Username string
	// Lifetime of the access tokens [1h].
	Lifetime time.Duration
	// Rotate issues a new refresh token with every refresh and retires the old one.
	Rotate bool
	// Scope is reported in token responses and introspection.
	Scope string
}

// Server is a running fake provider.
type Server struct {
	// URL is the base; TokenURL, DeviceURL, AuthURL and IntrospectURL are its endpoints.
	URL, TokenURL, DeviceURL, AuthURL, IntrospectURL string

	t   testing.TB
	opt Options
	srv *httptest.Server

	mu      sync.Mutex
	access  map[string]time.Time // access token -> expiry
	refresh map[string]bool      // live refresh tokens
	issued  int
	secrets []string
	// device is the answers still to give to device-code polls, then success.
	device []string
	polls  []time.Time
	// fail, when set, is the error code the next token requests get.
	fail string
	// codes are the authorisation codes not yet redeemed; deny makes the
	// authorisation endpoint answer access_denied.
	codes map[string]authCode
	deny  bool
}

// authCode is what an authorisation code was issued for.
type authCode struct {
	redirect, challenge string
}

// Start runs a server until t ends.
func Start(t testing.TB, opt Options) *Server {
	t.Helper()
	if opt.Lifetime <= 0 {
		opt.Lifetime = time.Hour
	}
	s := &Server{t: t, opt: opt, access: map[string]time.Time{}, refresh: map[string]bool{}, codes: map[string]authCode{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /authorize", s.authorize)
	mux.HandleFunc("POST /token", s.token)
	mux.HandleFunc("POST /device", s.deviceCode)
	mux.HandleFunc("POST /introspect", s.introspect)
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	s.URL = s.srv.URL
	s.TokenURL, s.DeviceURL, s.AuthURL, s.IntrospectURL = s.URL+"/token", s.URL+"/device", s.URL+"/authorize", s.URL+"/introspect"
	return s
}

// NewRefreshToken registers and returns a refresh token, as a finished login would.
func (s *Server) NewRefreshToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt := "rt-" + random()
	s.refresh[rt] = true
	s.secrets = append(s.secrets, rt)
	return rt
}

// Issued counts the access tokens issued so far.
func (s *Server) Issued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued
}

// ExpireAll makes every access token issued so far expired, as time would.
func (s *Server) ExpireAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.access {
		s.access[k] = time.Time{}
	}
}

// Revoke retires every refresh token, as a user or admin revoking consent does.
func (s *Server) Revoke() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.refresh)
}

// FailWith makes token requests fail with an RFC 6749 error code (invalid_client,
// server_error …) until called with "".
func (s *Server) FailWith(code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = code
}

// Device scripts the device-code polls: each poll gets the next answer
// (authorization_pending, slow_down, access_denied, expired_token) and, once they are
// used up, a token.
func (s *Server) Device(answers ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.device = answers
}

// Deny makes the person at the authorisation endpoint decline.
func (s *Server) Deny() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deny = true
}

// authorize is the sign-in page, with the person consenting at once: it sends the
// browser back to the client's loopback redirect with a code, or with access_denied.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || redirect.Scheme != "http" || redirect.Hostname() != "127.0.0.1" {
		http.Error(w, "redirect_uri must be a loopback http URL", http.StatusBadRequest)
		return
	}
	if q.Get("client_id") != s.opt.ClientID || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
		http.Error(w, "unknown client, or no code, or no S256 challenge", http.StatusBadRequest)
		return
	}
	back := url.Values{"state": {q.Get("state")}}
	s.mu.Lock()
	if s.deny {
		back.Set("error", "access_denied")
	} else {
		code := "ac-" + random()
		s.codes[code] = authCode{redirect: redirect.String(), challenge: q.Get("code_challenge")}
		back.Set("code", code)
	}
	s.mu.Unlock()
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

// Polls returns when each device-code poll arrived.
func (s *Server) Polls() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.polls...)
}

// Secrets returns every access and refresh token the server has issued, for tests
// that check none of them reaches a log or a report.
func (s *Server) Secrets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.secrets...)
}

// ActiveCount is how many access tokens would pass introspection now.
func (s *Server) ActiveCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, exp := range s.access {
		if time.Now().Before(exp) {
			n++
		}
	}
	return n
}

// Active reports whether an access token would pass introspection now.
func (s *Server) Active(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.access[token]
	return ok && time.Now().Before(exp)
}

func random() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.oauthError(w, "invalid_request", 0)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != "" {
		s.oauthError(w, s.fail, 0)
		return
	}
	f := r.PostForm
	if f.Get("client_id") != s.opt.ClientID {
		s.oauthError(w, "unauthorized_client", 700016)
		return
	}
	switch f.Get("grant_type") {
	case "client_credentials":
		if !s.clientAuthenticated(f.Get("client_secret"), f.Get("client_assertion_type"), f.Get("client_assertion")) {
			s.oauthError(w, "invalid_client", 7000215)
			return
		}
		s.issue(w, "")
	case "refresh_token":
		if s.opt.ClientSecret != "" && f.Get("client_secret") != s.opt.ClientSecret {
			s.oauthError(w, "invalid_client", 7000215)
			return
		}
		rt := f.Get("refresh_token")
		if !s.refresh[rt] {
			s.oauthError(w, "invalid_grant", 50173)
			return
		}
		if s.opt.Rotate {
			delete(s.refresh, rt)
			rt = "rt-" + random()
			s.refresh[rt] = true
			s.issue(w, rt)
			return
		}
		s.issue(w, "")
	case "authorization_code":
		c, ok := s.codes[f.Get("code")]
		delete(s.codes, f.Get("code"))
		sum := sha256.Sum256([]byte(f.Get("code_verifier")))
		if !ok || c.redirect != f.Get("redirect_uri") || base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge {
			s.oauthError(w, "invalid_grant", 70000)
			return
		}
		if s.opt.ClientSecret != "" && f.Get("client_secret") != s.opt.ClientSecret {
			s.oauthError(w, "invalid_client", 7000215)
			return
		}
		rt := "rt-" + random()
		s.refresh[rt] = true
		s.issue(w, rt)
	case "urn:ietf:params:oauth:grant-type:device_code":
		s.polls = append(s.polls, time.Now())
		if f.Get("device_code") != "dc-fake" {
			s.oauthError(w, "invalid_grant", 70000)
			return
		}
		if len(s.device) > 0 {
			code := s.device[0]
			s.device = s.device[1:]
			s.oauthError(w, code, deviceCodes[code])
			return
		}
		rt := "rt-" + random()
		s.refresh[rt] = true
		s.issue(w, rt)
	default:
		s.oauthError(w, "unsupported_grant_type", 70003)
	}
}

// clientAuthenticated checks a client secret or a client assertion. Callers hold mu.
func (s *Server) clientAuthenticated(secret, assertionType, assertion string) bool {
	if assertionType == "" {
		return s.opt.ClientSecret != "" && secret == s.opt.ClientSecret
	}
	if s.opt.ClientKey == nil || assertionType != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		return false
	}
	return verifyAssertion(s.opt.ClientKey, assertion, s.opt.ClientID, s.TokenURL) == nil
}

// issue answers with a new access token, and refresh token rt when set. Callers hold mu.
func (s *Server) issue(w http.ResponseWriter, rt string) {
	at := "at-" + random()
	s.secrets = append(s.secrets, at, rt)
	s.access[at] = time.Now().Add(s.opt.Lifetime)
	s.issued++
	body := map[string]any{"token_type": "Bearer", "access_token": at, "expires_in": int(s.opt.Lifetime.Seconds())}
	if rt != "" {
		body["refresh_token"] = rt
	}
	if s.opt.Scope != "" {
		body["scope"] = s.opt.Scope
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(body)
}

// deviceCodes are Entra ID's AADSTS numbers for the device flow's answers.
var deviceCodes = map[string]int{"authorization_pending": 70016, "slow_down": 70016, "access_denied": 70000, "authorization_declined": 70000, "expired_token": 70020}

// googleErrors are Google's answers: status and description by error code.
var googleErrors = map[string]struct {
	status int
	desc   string
}{
	"invalid_grant":          {400, "Token has been expired or revoked."},
	"invalid_client":         {401, "Unauthorized"},
	"unauthorized_client":    {401, "Unauthorized"},
	"invalid_scope":          {400, "Invalid device flow scope: https://mail.google.com/"},
	"authorization_pending":  {428, "Precondition Required"},
	"slow_down":              {403, "Forbidden"},
	"access_denied":          {403, "Forbidden"},
	"expired_token":          {400, "Not Found"},
	"server_error":           {500, "Internal error"},
	"unsupported_grant_type": {400, "Invalid grant_type: "},
}

// microsoftErrors are the first lines of Entra ID's descriptions by AADSTS number.
var microsoftErrors = map[int]string{
	50173:   "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password.",
	7000215: "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '00000000-0000-0000-0000-000000000000'.",
	700016:  "Application with identifier '00000000-0000-0000-0000-000000000000' was not found in the directory 'contoso'.",
	70016:   "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
	70000:   "The user denied the authorization request.",
	70020:   "The provided value for the input parameter 'device_code' is not valid. This device code has expired.",
	70003:   "The app requested an unsupported grant type.",
}

// oauthError answers an RFC 6749 5.2 error in the configured provider's shape.
// Callers hold mu.
func (s *Server) oauthError(w http.ResponseWriter, code string, aadsts int) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if s.opt.Style == Google {
		g, ok := googleErrors[code]
		if !ok {
			g.status, g.desc = 400, "Bad Request"
		}
		w.WriteHeader(g.status)
		json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": g.desc})
		return
	}
	status := http.StatusBadRequest
	if code == "invalid_client" {
		status = http.StatusUnauthorized
	}
	if code == "server_error" {
		status = http.StatusInternalServerError
	}
	now := time.Now().UTC().Format("2006-01-02 15:04:05Z")
	desc := fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s", aadsts, microsoftErrors[aadsts], random(), random(), now)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"error": code, "error_description": desc, "error_codes": []int{aadsts}, "timestamp": now,
		"trace_id": random(), "correlation_id": random(), "error_uri": fmt.Sprintf("https://login.microsoftonline.com/error?code=%d", aadsts),
	})
}

func (s *Server) deviceCode(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.PostForm.Get("client_id") != s.opt.ClientID {
		s.mu.Lock()
		s.oauthError(w, "unauthorized_client", 700016)
		s.mu.Unlock()
		return
	}
	body := map[string]any{"device_code": "dc-fake", "user_code": "FAKE-CODE", "expires_in": 900, "interval": 1}
	if s.opt.Style == Google {
		// Google spells it verification_url.
		body["verification_url"] = "https://www.google.com/device"
	} else {
		body["verification_uri"] = "https://microsoft.com/devicelogin"
		body["message"] = "To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code FAKE-CODE to authenticate."
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(body)
}

// introspect answers RFC 7662 token introspection, as Dovecot's oauth2 passdb asks it
// (a POST of token=…).
func (s *Server) introspect(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	tok := strings.TrimSpace(r.Form.Get("token"))
	body := map[string]any{"active": false}
	if s.Active(tok) {
		body = map[string]any{"active": true, "username": s.opt.Username, "scope": s.opt.Scope}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(body)
}
