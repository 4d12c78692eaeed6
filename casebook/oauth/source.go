package oauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Options tune a Source. Zero values take the defaults in brackets.
type Options struct {
	// HTTPClient talks to the token endpoint [a client with a 30 s timeout].
	HTTPClient *http.Client
	// Logger is told of refreshes and rotated refresh tokens, never of tokens.
	Logger *slog.Logger
	// MinBackoff and MaxBackoff bound the wait after a failed refresh before the
	// endpoint is asked again [1s, 5m]; callers in between get the same error.
	MinBackoff, MaxBackoff time.Duration
	// Now replaces the clock.
	Now func() time.Time
}

// Source hands out access tokens for one account and refreshes them before they
// expire: a fifth of their lifetime early, at most five minutes, so that a login
// never starts with a token about to lapse. It is safe for concurrent use.
type Source struct {
	acct Account
	opt  Options

	mu       sync.Mutex
	tok      *oauth2.Token
	issued   time.Time
	lastErr  error
	failures int
	retryAt  time.Time
}

// NewSource returns a Source for acct; it asks for nothing until a token is wanted.
func NewSource(acct Account, opt Options) *Source {
	if opt.HTTPClient == nil {
		opt.HTTPClient = defaultHTTPClient()
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.MinBackoff <= 0 {
		opt.MinBackoff = time.Second
	}
	if opt.MaxBackoff <= 0 {
		opt.MaxBackoff = 5 * time.Minute
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	opt.Logger = opt.Logger.With("oauth_account", acct.String())
	return &Source{acct: acct, opt: opt}
}

// defaultHTTPClient bounds a token request: the provider answers in well under a
// second, or is down.
func defaultHTTPClient() *http.Client { return &http.Client{Timeout: 30 * time.Second} }

// Account returns the account the source serves.
func (s *Source) Account() Account { return s.acct }

// Token returns an access token that is not about to expire, refreshing it first
// when it is.
func (s *Source) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fresh() {
		return s.tok.AccessToken, nil
	}
	return s.refresh(ctx)
}

// Refresh replaces a token a server refused. When another connection has already
// replaced it, the newer token is returned without asking the provider again.
func (s *Source) Refresh(ctx context.Context, rejected string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok != nil && s.tok.AccessToken != rejected && s.fresh() {
		return s.tok.AccessToken, nil
	}
	s.tok = nil
	return s.refresh(ctx)
}

// Ready reports the last refresh's error until a refresh succeeds, for /readyz.
func (s *Source) Ready(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

// Granted lists the scopes or roles of the current token: the token response's
// scope, else the scp and roles claims of a JWT access token (Microsoft's are JWTs).
// It is empty before the first token.
func (s *Source) Granted() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok == nil {
		return nil
	}
	if sc, ok := s.tok.Extra("scope").(string); ok && sc != "" {
		return strings.Fields(sc)
	}
	return jwtGrants(s.tok.AccessToken)
}

// fresh reports whether the token outlives the refresh margin. Callers hold mu.
func (s *Source) fresh() bool {
	if s.tok == nil || s.tok.AccessToken == "" {
		return false
	}
	if s.tok.Expiry.IsZero() {
		return true
	}
	margin := min(s.tok.Expiry.Sub(s.issued)/5, 5*time.Minute)
	return s.opt.Now().Before(s.tok.Expiry.Add(-margin))
}

// refresh asks the token endpoint, unless a recent failure asks for patience.
// Callers hold mu.
func (s *Source) refresh(ctx context.Context) (string, error) {
	now := s.opt.Now()
	if s.lastErr != nil && now.Before(s.retryAt) {
		return "", s.lastErr
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, s.opt.HTTPClient)
	tok, err := s.fetch(ctx)
	if err != nil {
		if ctx.Err() != nil {
			// Shutdown or a caller's deadline says nothing about the account.
			return "", err
		}
		s.failures++
		wait := s.opt.MinBackoff << min(s.failures-1, 20)
		s.retryAt = now.Add(min(wait, s.opt.MaxBackoff))
		s.lastErr = err
		return "", err
	}
	if tok.AccessToken == "" {
		return "", fmt.Errorf("oauth %s: the token endpoint answered without an access token", s.acct)
	}
	s.tok, s.issued, s.lastErr, s.failures = tok, now, nil, 0
	s.opt.Logger.Debug("oauth token refreshed", "expires_at", tok.Expiry)
	return tok.AccessToken, nil
}

// fetch gets a new token with the account's grant.
func (s *Source) fetch(ctx context.Context) (*oauth2.Token, error) {
	a := s.acct
	var secret string
	if a.ClientSecretFile != "" {
		b, err := readSecret(a.ClientSecretFile)
		if err != nil {
			return nil, fmt.Errorf("oauth %s: client_secret_file: %w", a, err)
		}
		secret = b
	}
	switch a.Grant {
	case RefreshToken:
		return s.redeem(ctx, secret)
	default:
		cc := clientcredentials.Config{ClientID: a.ClientID, ClientSecret: secret, TokenURL: a.TokenURL,
			Scopes: a.Scopes, AuthStyle: oauth2.AuthStyleInParams}
		if a.ClientCertFile != "" {
			cred, err := loadCertificate(a.ClientCertFile, s.opt.Now())
			if err != nil {
				return nil, fmt.Errorf("oauth %s: client_cert_file: %w", a, err)
			}
			// A new assertion for every request: each carries its own jti and a
			// lifetime of minutes.
			assertion, err := cred.assertion(a.ClientID, a.TokenURL, s.opt.Now())
			if err != nil {
				return nil, fmt.Errorf("oauth %s: %w", a, err)
			}
			cc.EndpointParams = map[string][]string{
				"client_assertion_type": {assertionType},
				"client_assertion":      {assertion},
			}
		}
		tok, err := cc.Token(ctx)
		if err != nil {
			return nil, refreshError(a, err)
		}
		return tok, nil
	}
}

// redeem trades the refresh token in its file for an access token, and writes a
// rotated refresh token back: a provider that rotates may refuse the old one next time.
func (s *Source) redeem(ctx context.Context, secret string) (*oauth2.Token, error) {
	a := s.acct
	rt, err := readSecret(a.RefreshTokenFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("oauth %s: no refresh token in %s yet: run casebook oauth login --provider %s --refresh-token-file %s", a, a.RefreshTokenFile, a.Provider, a.RefreshTokenFile)
	}
	if err != nil {
		return nil, fmt.Errorf("oauth %s: refresh_token_file: %w", a, err)
	}
	cfg := oauth2.Config{ClientID: a.ClientID, ClientSecret: secret, Scopes: a.Scopes,
		Endpoint: oauth2.Endpoint{TokenURL: a.TokenURL, AuthStyle: oauth2.AuthStyleInParams}}
	tok, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
	if err != nil {
		return nil, refreshError(a, err)
	}
	if tok.RefreshToken != "" && tok.RefreshToken != rt {
		if err := WriteRefreshToken(a.RefreshTokenFile, tok.RefreshToken); err != nil {
			// The new access token works; the old refresh token may still work next
			// time, and if not, the error then says to log in again.
			s.opt.Logger.Error("cannot keep the rotated refresh token", slog.Any("error", err))
		} else {
			s.opt.Logger.Info("refresh token rotated", "file", a.RefreshTokenFile)
		}
	}
	return tok, nil
}

// readSecret reads a one-line secret file.
func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

// WriteRefreshToken stores a refresh token in path, mode 0600, atomically: a
// temporary file in the same directory, synced, then renamed over the old one, so a
// crash leaves the old token or the new one, never half of either.
func WriteRefreshToken(path, token string) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("refresh token file: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("refresh token file: %w", err)
	}
	if _, err := f.WriteString(token + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("refresh token file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("refresh token file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("refresh token file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("refresh token file: %w", err)
	}
	// The rename is durable once the directory is synced.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// jwtGrants reads the scp and roles claims of a JWT access token without checking its
// signature: it only tells an operator what the token allows.
func jwtGrants(token string) []string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	var c struct {
		Scp   string   `json:"scp"`
		Roles []string `json:"roles"`
	}
	if json.Unmarshal(b, &c) != nil {
		return nil
	}
	return append(strings.Fields(c.Scp), c.Roles...)
}

// Sources keeps one Source per account, so that a mailbox and the SMTP server that
// name the same account share its tokens and its refreshes.
type Sources struct {
	opt Options
	mu  sync.Mutex
	by  map[string]*Source
	// files maps a refresh token file to the account that owns it: two accounts
	// rotating one file would lock each other out.
	files map[string]string
}

// NewSources returns an empty set with opt for every Source it makes.
func NewSources(opt Options) *Sources {
	return &Sources{opt: opt, by: map[string]*Source{}, files: map[string]string{}}
}

// For returns the Source of acct, made on first use.
func (ss *Sources) For(acct Account) (*Source, error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	k := acct.key()
	if s, ok := ss.by[k]; ok {
		return s, nil
	}
	if f := acct.RefreshTokenFile; f != "" {
		if other, ok := ss.files[f]; ok && other != k {
			return nil, fmt.Errorf("oauth: refresh_token_file %s is named by two differently configured accounts: give them the same settings or separate files", f)
		}
		ss.files[f] = k
	}
	s := NewSource(acct, ss.opt)
	ss.by[k] = s
	return s, nil
}

// All returns every Source made so far.
func (ss *Sources) All() []*Source {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	out := make([]*Source, 0, len(ss.by))
	for _, s := range ss.by {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *Source) int { return strings.Compare(a.acct.String(), b.acct.String()) })
	return out
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
