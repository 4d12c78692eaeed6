// Package oauth obtains OAuth 2.0 access tokens for the mailboxes casebook reads
// (IMAP) and sends through (SMTP) with SASL XOAUTH2: Microsoft 365 app-only tokens
// (client credentials, with a secret or a certificate), Google and other providers'
// refresh-token grants, and the device authorisation grant (RFC 8628) or the
// authorisation code grant with a loopback redirect (RFC 8252) that obtains a refresh
// token once. Tokens are refreshed before they expire, one Source per account,
// shared by every connection that names the account.
package oauth

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Provider names whose endpoints and defaults an account uses.
type Provider string

// The providers.
const (
	Microsoft Provider = "microsoft"
	Google    Provider = "google"
	Generic   Provider = "generic"
)

// Keys are the URL query keys an account is configured with, in the mailbox URL and
// the SMTP URL alike.
var Keys = []string{"oauth", "tenant", "client_id", "client_secret_file", "client_cert_file", "refresh_token_file", "token_url", "device_url", "auth_url", "scope"}

// The scopes each kind of account asks for unless scope= says otherwise.
const (
	// microsoftAppScope is what Exchange Online grants an app-only token for; the
	// roles (IMAP.AccessAsApp, SMTP.SendAsApp) come from the app registration.
	microsoftAppScope = "https://outlook.office365.com/.default"
	// microsoftUserScope is a signed-in user's mailbox and SMTP AUTH, and
	// offline_access for the refresh token.
	microsoftUserScope = "https://outlook.office365.com/IMAP.AccessAsUser.All https://outlook.office365.com/SMTP.Send offline_access"
	googleScope        = "https://mail.google.com/"
)

// Grant is how an account gets its access tokens.
type Grant string

// The grants.
const (
	// ClientCredentials is the app-only grant (RFC 6749 4.4) with a client secret or a
	// certificate-signed assertion (RFC 7523).
	ClientCredentials Grant = "client_credentials"
	// RefreshToken redeems a refresh token kept in a file (RFC 6749 6).
	RefreshToken Grant = "refresh_token"
)

// Account is one OAuth 2.0 client identity and how it gets tokens.
type Account struct {
	Provider Provider
	Grant    Grant
	Tenant   string
	ClientID string
	// ClientSecretFile, ClientCertFile and RefreshTokenFile are read at every
	// refresh, so that a rotated secret or a new login is picked up without a restart.
	ClientSecretFile string
	// ClientCertFile holds a PEM certificate and its RSA private key.
	ClientCertFile   string
	RefreshTokenFile string
	TokenURL         string
	// DeviceURL is the device authorisation endpoint, for `casebook oauth login`.
	DeviceURL string
	// AuthURL is the authorisation endpoint, for `casebook oauth login --browser`.
	AuthURL string
	Scopes  []string
}

// ParseQuery reads an account from a mailbox or SMTP URL's query. It returns
// ErrNoAccount when the query names no provider (oauth=).
func ParseQuery(q url.Values) (Account, error) {
	for _, k := range Keys {
		if len(q[k]) > 1 {
			return Account{}, fmt.Errorf("oauth: %s is given twice", k)
		}
	}
	a := Account{
		Provider:         Provider(q.Get("oauth")),
		Tenant:           q.Get("tenant"),
		ClientID:         q.Get("client_id"),
		ClientSecretFile: q.Get("client_secret_file"),
		ClientCertFile:   q.Get("client_cert_file"),
		RefreshTokenFile: q.Get("refresh_token_file"),
		TokenURL:         q.Get("token_url"),
		DeviceURL:        q.Get("device_url"),
		AuthURL:          q.Get("auth_url"),
		Scopes:           strings.Fields(q.Get("scope")),
	}
	if a.Provider == "" {
		for _, k := range Keys {
			if q.Has(k) {
				return Account{}, fmt.Errorf("oauth: %s= needs oauth=microsoft, google or generic", k)
			}
		}
		return Account{}, ErrNoAccount
	}
	return a, a.complete()
}

// ErrNoAccount is returned by ParseQuery for a URL without OAuth settings.
var ErrNoAccount = errors.New("oauth: no account configured")

// complete checks the account and fills in the provider's endpoints and scopes.
func (a *Account) complete() error {
	if a.ClientID == "" {
		return errors.New("oauth: client_id is missing (the application or client ID of the app registration)")
	}
	if a.ClientSecretFile != "" && a.ClientCertFile != "" {
		return errors.New("oauth: client_secret_file and client_cert_file: name one")
	}
	for k, v := range map[string]string{"token_url": a.TokenURL, "device_url": a.DeviceURL, "auth_url": a.AuthURL} {
		if v == "" {
			continue
		}
		u, err := url.Parse(v)
		if err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))) {
			return fmt.Errorf("oauth: %s=%q: want an https:// URL (http:// only to a loopback address)", k, v)
		}
	}
	if a.RefreshTokenFile != "" {
		a.Grant = RefreshToken
	} else {
		a.Grant = ClientCredentials
	}
	switch a.Provider {
	case Microsoft:
		if a.Tenant == "" && a.TokenURL == "" {
			return errors.New("oauth: microsoft needs tenant= (the directory (tenant) ID or its domain)")
		}
		if a.Tenant != "" && !validTenant(a.Tenant) {
			return fmt.Errorf("oauth: tenant %q is neither a GUID nor a domain name", a.Tenant)
		}
		base := "https://login.microsoftonline.com/" + a.Tenant + "/oauth2/v2.0/"
		a.TokenURL = cmpOr(a.TokenURL, base+"token")
		a.DeviceURL = cmpOr(a.DeviceURL, base+"devicecode")
		a.AuthURL = cmpOr(a.AuthURL, base+"authorize")
		if a.Grant == ClientCredentials {
			if a.ClientSecretFile == "" && a.ClientCertFile == "" {
				return errors.New("oauth: microsoft app-only access needs client_secret_file or client_cert_file (or refresh_token_file after casebook oauth login)")
			}
			a.Scopes = orDefault(a.Scopes, microsoftAppScope)
		} else {
			a.Scopes = orDefault(a.Scopes, microsoftUserScope)
		}
	case Google:
		if a.Grant != RefreshToken {
			return errors.New("oauth: google needs refresh_token_file (run casebook oauth login --provider google)")
		}
		if a.ClientCertFile != "" {
			return errors.New("oauth: google takes client_secret_file, not client_cert_file")
		}
		a.TokenURL = cmpOr(a.TokenURL, "https://oauth2.googleapis.com/token")
		a.DeviceURL = cmpOr(a.DeviceURL, "https://oauth2.googleapis.com/device/code")
		a.AuthURL = cmpOr(a.AuthURL, "https://accounts.google.com/o/oauth2/v2/auth")
		a.Scopes = orDefault(a.Scopes, googleScope)
	case Generic:
		if a.TokenURL == "" {
			return errors.New("oauth: generic needs token_url=")
		}
		if a.Grant == ClientCredentials && a.ClientSecretFile == "" && a.ClientCertFile == "" {
			return errors.New("oauth: generic needs refresh_token_file, client_secret_file or client_cert_file")
		}
	default:
		return fmt.Errorf("oauth: oauth=%q: want microsoft, google or generic", a.Provider)
	}
	return nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func orDefault(scopes []string, def string) []string {
	if len(scopes) > 0 {
		return scopes
	}
	return strings.Fields(def)
}

// validTenant accepts what Entra ID names a tenant by: a GUID, a domain, or the
// multi-tenant aliases (organizations, common, consumers).
func validTenant(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-') {
			return false
		}
	}
	return s != ""
}

// String names the account in logs and checks, without any secret.
func (a Account) String() string {
	s := string(a.Provider) + " client " + a.ClientID
	if a.Tenant != "" {
		s += " tenant " + a.Tenant
	}
	if a.RefreshTokenFile != "" {
		s += " (" + a.RefreshTokenFile + ")"
	}
	return s
}

// key identifies the account: two URLs that configure it alike share one Source.
func (a Account) key() string {
	return strings.Join([]string{string(a.Provider), string(a.Grant), a.Tenant, a.ClientID, a.ClientSecretFile,
		a.ClientCertFile, a.RefreshTokenFile, a.TokenURL, strings.Join(slices.Sorted(slices.Values(a.Scopes)), " ")}, "\x00")
}
