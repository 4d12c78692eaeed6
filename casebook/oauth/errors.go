package oauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"golang.org/x/oauth2"
)

// RefreshError is a token request the provider refused. Error() says what to do about
// it in words an operator can act on, followed by the provider's own words; it never
// holds a secret or a token (error bodies carry neither).
type RefreshError struct {
	// Account names the account.
	Account string
	// Code is RFC 6749's error code (invalid_grant, invalid_client …); empty when the
	// answer was not an OAuth error.
	Code string
	// Description is the first line of the provider's error_description; Microsoft's
	// further lines are trace and correlation IDs.
	Description string
	// Hint is what to do.
	Hint string
}

func (e *RefreshError) Error() string {
	said := e.Code
	if e.Description != "" {
		said += ": " + e.Description
	}
	return fmt.Sprintf("oauth %s: %s (provider said %s)", e.Account, e.Hint, said)
}

// Is makes errors.Is(err, ErrLoginAgain) true for a refused refresh token.
func (e *RefreshError) Is(target error) bool {
	return target == ErrLoginAgain && e.Code == "invalid_grant"
}

// ErrLoginAgain matches a refresh the provider refused because the refresh token is no
// longer good: consent revoked, password changed, unused too long.
var ErrLoginAgain = errors.New("oauth: the refresh token is no longer accepted")

// Microsoft's AADSTS codes that say more than the RFC 6749 code does.
var microsoftHints = map[int]string{
	65001:   "admin consent is missing: grant admin consent for the app's API permissions in Entra ID (App registrations → API permissions)",
	50173:   "consent was revoked or the password changed: run casebook oauth login again",
	70008:   "the refresh token expired after a long time unused: run casebook oauth login again",
	700082:  "the refresh token expired after a long time unused: run casebook oauth login again",
	7000215: "the client secret was refused: copy the secret's Value (not its ID) from Certificates & secrets into client_secret_file",
	7000222: "the client secret has expired: create a new one under Certificates & secrets and put it in client_secret_file",
	700027:  "the certificate assertion was refused: upload the certificate in client_cert_file to the app registration (Certificates & secrets)",
	700016:  "the application is not found in this tenant: check client_id and tenant",
	90002:   "the tenant is not found: check tenant= (the directory ID or a verified domain)",
	7000112: "the application is disabled in this tenant: enable it under Enterprise applications",
}

// refreshError turns what the token endpoint or the network said into an error.
func refreshError(acct Account, err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		var ne net.Error
		if errors.As(err, &ne) {
			return fmt.Errorf("oauth %s: cannot reach the token endpoint %s: %w", acct, acct.TokenURL, err)
		}
		return fmt.Errorf("oauth %s: %w", acct, err)
	}
	e := &RefreshError{Account: acct.String(), Code: re.ErrorCode}
	desc, _, _ := strings.Cut(strings.ReplaceAll(re.ErrorDescription, "\r\n", "\n"), "\n")
	e.Description = strings.TrimSpace(desc)
	// Microsoft adds error_codes: [70008]; the description starts "AADSTS70008:" too.
	var ms struct {
		Codes []int `json:"error_codes"`
	}
	_ = json.Unmarshal(re.Body, &ms)
	for c, h := range microsoftHints {
		if slices.Contains(ms.Codes, c) {
			e.Hint = h
		}
	}
	if e.Hint == "" {
		e.Hint = hintFor(acct, re)
	}
	if e.Code == "" && re.Response != nil {
		e.Code = "HTTP " + re.Response.Status
	}
	return e
}

func hintFor(acct Account, re *oauth2.RetrieveError) string {
	switch re.ErrorCode {
	case "invalid_grant":
		if acct.Grant == RefreshToken {
			return "consent was revoked or the refresh token expired: run casebook oauth login again"
		}
		return "the grant was refused: check the app's permissions and admin consent"
	case "invalid_client", "unauthorized_client":
		if acct.ClientCertFile != "" {
			return "the client or its certificate was refused: check client_id, and that the certificate in client_cert_file is uploaded to the app registration and not expired"
		}
		return "the client was refused: check client_id and the secret in client_secret_file (it may have expired)"
	case "invalid_scope":
		if acct.Provider == Google && strings.Contains(re.ErrorDescription, "device flow") {
			return "Google's device sign-in does not allow this scope: get the refresh token with an authorisation-code sign-in instead (see the README's Google Workspace recipe)"
		}
		return "the scope was refused: check scope= and the app's API permissions"
	case "invalid_request":
		return "the token request was refused: check tenant, client_id and token_url"
	case "access_denied", "authorization_declined":
		return "access was denied: the person signing in declined, or the app is not allowed for them"
	case "expired_token":
		return "the code expired before it was entered: run casebook oauth login again"
	case "temporarily_unavailable", "server_error":
		return "the provider is having trouble: casebook tries again"
	}
	if re.Response != nil && re.Response.StatusCode >= 500 {
		return "the provider is having trouble: casebook tries again"
	}
	return "the token endpoint refused the request: check the account settings"
}
