package oauth

import (
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseQuery(t *testing.T) {
	tests := []struct {
		name  string
		query string
		want  Account
		err   string
	}{
		{name: "microsoft app-only with a secret",
			query: "oauth=microsoft&tenant=contoso.onmicrosoft.com&client_id=app&client_secret_file=/s",
			want: Account{Provider: Microsoft, Grant: ClientCredentials, Tenant: "contoso.onmicrosoft.com", ClientID: "app", ClientSecretFile: "/s",
				TokenURL:  "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token",
				DeviceURL: "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/devicecode",
				AuthURL:   "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize",
				Scopes:    []string{"https://outlook.office365.com/.default"}}},
		{name: "microsoft app-only with a certificate",
			query: "oauth=microsoft&tenant=t&client_id=app&client_cert_file=/c.pem",
			want: Account{Provider: Microsoft, Grant: ClientCredentials, Tenant: "t", ClientID: "app", ClientCertFile: "/c.pem",
				TokenURL: "https://login.microsoftonline.com/t/oauth2/v2.0/token", DeviceURL: "https://login.microsoftonline.com/t/oauth2/v2.0/devicecode",
				AuthURL: "https://login.microsoftonline.com/t/oauth2/v2.0/authorize",
				Scopes:  []string{"https://outlook.office365.com/.default"}}},
		{name: "microsoft delegated after oauth login",
			query: "oauth=microsoft&tenant=organizations&client_id=app&refresh_token_file=/rt",
			want: Account{Provider: Microsoft, Grant: RefreshToken, Tenant: "organizations", ClientID: "app", RefreshTokenFile: "/rt",
				TokenURL: "https://login.microsoftonline.com/organizations/oauth2/v2.0/token", DeviceURL: "https://login.microsoftonline.com/organizations/oauth2/v2.0/devicecode",
				AuthURL: "https://login.microsoftonline.com/organizations/oauth2/v2.0/authorize",
				Scopes:  []string{"https://outlook.office365.com/IMAP.AccessAsUser.All", "https://outlook.office365.com/SMTP.Send", "offline_access"}}},
		{name: "google",
			query: "oauth=google&client_id=c.apps.googleusercontent.com&client_secret_file=/s&refresh_token_file=/rt",
			want: Account{Provider: Google, Grant: RefreshToken, ClientID: "c.apps.googleusercontent.com", ClientSecretFile: "/s", RefreshTokenFile: "/rt",
				TokenURL: "https://oauth2.googleapis.com/token", DeviceURL: "https://oauth2.googleapis.com/device/code",
				AuthURL: "https://accounts.google.com/o/oauth2/v2/auth", Scopes: []string{"https://mail.google.com/"}}},
		{name: "generic on loopback with scopes",
			query: "oauth=generic&client_id=c&refresh_token_file=/rt&token_url=http://127.0.0.1:8080/token&scope=a+b",
			want:  Account{Provider: Generic, Grant: RefreshToken, ClientID: "c", RefreshTokenFile: "/rt", TokenURL: "http://127.0.0.1:8080/token", Scopes: []string{"a", "b"}}},
		{name: "no oauth settings", query: "tls=none", err: "no account configured"},
		{name: "settings without a provider", query: "client_id=x", err: "client_id= needs oauth="},
		{name: "unknown provider", query: "oauth=yahoo&client_id=x&token_url=https://t/", err: `oauth="yahoo"`},
		{name: "no client id", query: "oauth=microsoft&tenant=t&client_secret_file=/s", err: "client_id is missing"},
		{name: "secret and certificate", query: "oauth=microsoft&tenant=t&client_id=c&client_secret_file=/s&client_cert_file=/c", err: "name one"},
		{name: "microsoft without tenant", query: "oauth=microsoft&client_id=c&client_secret_file=/s", err: "needs tenant="},
		{name: "tenant with a slash", query: "oauth=microsoft&tenant=a/b&client_id=c&client_secret_file=/s", err: "neither a GUID"},
		{name: "microsoft app-only without a credential", query: "oauth=microsoft&tenant=t&client_id=c", err: "client_secret_file or client_cert_file"},
		{name: "google without a refresh token", query: "oauth=google&client_id=c&client_secret_file=/s", err: "needs refresh_token_file"},
		{name: "google with a certificate", query: "oauth=google&client_id=c&client_cert_file=/c&refresh_token_file=/rt", err: "not client_cert_file"},
		{name: "generic without token url", query: "oauth=generic&client_id=c&refresh_token_file=/rt", err: "needs token_url"},
		{name: "generic without any credential", query: "oauth=generic&client_id=c&token_url=https://idp/token", err: "needs refresh_token_file"},
		{name: "cleartext token url", query: "oauth=generic&client_id=c&refresh_token_file=/rt&token_url=http://idp.example/token", err: "want an https"},
		{name: "key given twice", query: "oauth=google&client_id=a&client_id=b&refresh_token_file=/rt", err: "client_id is given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseQuery(q)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("account (-want +got):\n%s", d)
			}
		})
	}
}

func TestSourcesShareOneAccount(t *testing.T) {
	parse := func(q string) Account {
		v, _ := url.ParseQuery(q)
		a, err := ParseQuery(v)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	ss := NewSources(Options{})
	imap, _ := ss.For(parse("oauth=google&client_id=c&refresh_token_file=/rt"))
	smtp, _ := ss.For(parse("client_id=c&refresh_token_file=/rt&oauth=google"))
	if imap != smtp {
		t.Error("the same account got two sources")
	}
	if _, err := ss.For(parse("oauth=google&client_id=other&refresh_token_file=/rt")); err == nil {
		t.Error("two accounts rotating one refresh token file were accepted")
	}
	if len(ss.All()) != 1 {
		t.Errorf("%d sources, want 1", len(ss.All()))
	}
}
