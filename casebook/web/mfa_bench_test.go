package web_test

import (
	"net/url"
	"testing"
)

// BenchmarkLoginSecondFactor measures a whole login, from the password to the first
// page, without and with a TOTP code, on one server: what the second factor adds is
// one request, a few queries and an HMAC. Cheap Argon2 parameters keep the hash from
// hiding the difference.
//
//	go test -run '^$' -bench BenchmarkLoginSecondFactor -count 3 ./casebook/web
func BenchmarkLoginSecondFactor(b *testing.B) {
	e := newEnv(b)
	e.loggedIn(e.sam.Email, samPW) // enrols
	b.Run("password", func(b *testing.B) {
		for b.Loop() {
			if r := e.client().login(e.alice.Email, alicePW); r.Header.Get("Location") != "/cases" {
				b.Fatalf("login: %d %s", r.StatusCode, r.Header.Get("Location"))
			}
		}
	})
	b.Run("password+totp", func(b *testing.B) {
		for b.Loop() {
			// Each code works once: forget the last step used, outside the timing.
			b.StopTimer()
			must(e.st.DB().Exec(`UPDATE mfa_factors SET last_step = 0`))
			code := e.totpCode(e.sam.Email)
			b.StartTimer()
			c := e.client()
			if r := c.login(e.sam.Email, samPW); r.Header.Get("Location") != "/login/code" {
				b.Fatalf("login: %d %s", r.StatusCode, r.Header.Get("Location"))
			}
			if r := c.post("/login/code", url.Values{"code": {code}}); r.Header.Get("Location") != "/cases" {
				b.Fatalf("code: %d %s", r.StatusCode, r.Header.Get("Location"))
			}
		}
	})
}
