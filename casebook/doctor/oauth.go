package doctor

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// TokenSource is an OAuth account's token source (oauth.Source is one).
type TokenSource interface {
	Token(ctx context.Context) (string, error)
	// Granted lists the scopes or roles of the current token.
	Granted() []string
}

// OAuthAccount is an OAuth 2.0 account a mailbox or the SMTP server logs in with.
type OAuthAccount struct {
	// Name labels the check: provider and client, no secret.
	Name   string
	Source TokenSource
	// Want are the scopes or roles IMAP and SMTP need (IMAP.AccessAsApp,
	// https://mail.google.com/ …); a grant ending in "/"+want counts, since Microsoft
	// names scopes with and without their resource.
	Want []string
}

// OAuth obtains a token for the account and checks it carries what is wanted. The
// logins with it are the IMAP and SMTP checks' business.
func OAuth(a OAuthAccount) Check {
	return Check{Name: "oauth " + a.Name, Run: func(ctx context.Context) (string, error) {
		if _, err := a.Source.Token(ctx); err != nil {
			return "", err
		}
		granted := a.Source.Granted()
		var missing []string
		for _, w := range a.Want {
			if !slices.ContainsFunc(granted, func(g string) bool { return g == w || strings.HasSuffix(g, "/"+w) }) {
				missing = append(missing, w)
			}
		}
		switch {
		case len(granted) == 0 && len(a.Want) > 0:
			return "", Warning("token obtained, but the provider does not say what it grants: the IMAP and SMTP checks show whether it is enough")
		case len(missing) > 0:
			return "", fmt.Errorf("token obtained, but it lacks %s (it grants %s): add the API permission and grant admin consent, or sign in again with it",
				strings.Join(missing, ", "), strings.Join(granted, " "))
		case len(granted) == 0:
			return "token obtained", nil
		}
		return "token obtained, grants " + strings.Join(granted, " "), nil
	}}
}
