package oauth_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/casebookhq/casebook/casebook/oauth"
	"github.com/casebookhq/casebook/casebook/oauth/oauthtest"
)

// BenchmarkToken measures what a login pays for its token: a cached one (every login
// but one an hour), a refresh with a client secret against a loopback endpoint, and
// one with a certificate, which signs a new RSA-2048 assertion each time.
//
//	go test -run '^$' -bench Token -count 3 ./casebook/oauth
func BenchmarkToken(b *testing.B) {
	pemBytes, key := oauthtest.Certificate(b, time.Now().Add(time.Hour))
	fake := oauthtest.Start(b, oauthtest.Options{ClientID: "c", ClientSecret: "s", ClientKey: key})
	dir := b.TempDir()
	secret, cert := dir+"/secret", dir+"/cert.pem"
	for p, v := range map[string]string{secret: "s", cert: string(pemBytes)} {
		if err := writeBenchFile(p, v); err != nil {
			b.Fatal(err)
		}
	}
	source := func(cred, file string) *oauth.Source {
		a, err := oauth.ParseQuery(url.Values{"oauth": {"generic"}, "client_id": {"c"}, cred: {file}, "token_url": {fake.TokenURL}})
		if err != nil {
			b.Fatal(err)
		}
		return oauth.NewSource(a, oauth.Options{})
	}
	b.Run("cached", func(b *testing.B) {
		src := source("client_secret_file", secret)
		for b.Loop() {
			if _, err := src.Token(b.Context()); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, c := range []struct{ name, cred, file string }{{"refresh_secret", "client_secret_file", secret}, {"refresh_certificate", "client_cert_file", cert}} {
		b.Run(c.name, func(b *testing.B) {
			src := source(c.cred, c.file)
			tok := ""
			for b.Loop() {
				var err error
				if tok, err = src.Refresh(b.Context(), tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
