package oauth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// DeviceCode is what the person signing in needs: where to go and what to type.
type DeviceCode struct {
	VerificationURI string
	UserCode        string
	Expires         time.Time
}

// Login runs the device authorisation grant (RFC 8628) for acct: it asks for a code,
// hands it to show, polls the token endpoint at the interval the provider asks for
// (slowing down when told to) until the person has signed in, declined, or the code
// expired, and returns the refresh token. The caller stores it.
func Login(ctx context.Context, acct Account, opt Options, show func(DeviceCode) error) (refreshToken string, granted []string, err error) {
	if opt.HTTPClient == nil {
		opt.HTTPClient = defaultHTTPClient()
	}
	cfg, err := config(acct)
	if err != nil {
		return "", nil, err
	}
	hctx := context.WithValue(ctx, oauth2.HTTPClient, opt.HTTPClient)
	da, err := cfg.DeviceAuth(hctx)
	if err != nil {
		return "", nil, fmt.Errorf("oauth login: device code: %w", refreshError(acct, err))
	}
	if err := show(DeviceCode{VerificationURI: da.VerificationURI, UserCode: da.UserCode, Expires: da.Expiry}); err != nil {
		return "", nil, err
	}
	// DeviceAccessToken waits out authorization_pending, adds 5 s on slow_down, and
	// gives up at the code's expiry.
	tok, err := cfg.DeviceAccessToken(hctx, da)
	switch {
	case err == nil:
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		return "", nil, fmt.Errorf("oauth login: the code expired before it was entered: run casebook oauth login again")
	case ctx.Err() != nil:
		return "", nil, fmt.Errorf("oauth login: %w", ctx.Err())
	default:
		return "", nil, fmt.Errorf("oauth login: %w", refreshError(acct, err))
	}
	return signedIn(acct, tok)
}

// signedIn returns the refresh token a login obtained and what the access token
// beside it grants.
func signedIn(acct Account, tok *oauth2.Token) (refreshToken string, granted []string, err error) {
	if tok.RefreshToken == "" {
		return "", nil, fmt.Errorf("oauth login: %s issued no refresh token: ask for offline access (Microsoft: add offline_access to scope)", acct.Provider)
	}
	if sc, ok := tok.Extra("scope").(string); ok && sc != "" {
		granted = strings.Fields(sc)
	} else {
		granted = jwtGrants(tok.AccessToken)
	}
	return tok.RefreshToken, granted, nil
}

// config is the oauth2 configuration of a login for acct.
func config(acct Account) (oauth2.Config, error) {
	var secret string
	if acct.ClientSecretFile != "" {
		var err error
		if secret, err = readSecret(acct.ClientSecretFile); err != nil {
			return oauth2.Config{}, fmt.Errorf("oauth login: client secret: %w", err)
		}
	}
	return oauth2.Config{ClientID: acct.ClientID, ClientSecret: secret, Scopes: acct.Scopes,
		Endpoint: oauth2.Endpoint{TokenURL: acct.TokenURL, DeviceAuthURL: acct.DeviceURL, AuthURL: acct.AuthURL, AuthStyle: oauth2.AuthStyleInParams}}, nil
}
