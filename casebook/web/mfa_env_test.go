package web_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

var (
	secretRE   = regexp.MustCompile(`id="secret">([A-Z2-7 ]+)<`)
	recoveryRE = regexp.MustCompile(`<li><code>([a-z2-7]{5}-[a-z2-7]{5})</code></li>`)
)

// totpAt is the code an authenticator app shows for secret at t.
func totpAt(secret string, t time.Time) string {
	c, err := totp.GenerateCodeCustom(secret, t, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		panic(err)
	}
	return c
}

// enrol reads email's secret from the enrolment page, as a person would type it into
// their app, confirms it with the app's code and returns it with the recovery codes
// and the last answer.
func (c *client) enrol(email string) (secret string, codes []string, r resp) {
	c.e.t.Helper()
	page := c.get("/mfa/enrol")
	m := secretRE.FindStringSubmatch(page.body)
	if page.StatusCode != http.StatusOK || m == nil {
		c.e.t.Fatalf("enrolment page: %d, no secret", page.StatusCode)
	}
	secret = strings.ReplaceAll(m[1], " ", "")
	r = c.post("/mfa/enrol", url.Values{"code": {totpAt(secret, time.Now())}})
	for _, m := range recoveryRE.FindAllStringSubmatch(r.body, -1) {
		codes = append(codes, m[1])
	}
	if r.StatusCode != http.StatusOK || len(codes) != 10 {
		c.e.t.Fatalf("enrolment: %d, %d recovery codes", r.StatusCode, len(codes))
	}
	c.e.secrets[email] = secret
	return secret, codes, r
}

// totpCode is a code for email's factor that the server has not seen: the first step
// of the window after the last one it accepted.
func (e *env) totpCode(email string) string {
	e.t.Helper()
	secret, ok := e.secrets[email]
	if !ok {
		e.t.Fatalf("%s has not enrolled in this test", email)
	}
	var last int64
	if err := e.st.DB().Get(&last, `SELECT last_step FROM mfa_factors f JOIN users u ON u.id = f.user_id WHERE u.email = $1`, email); err != nil {
		e.t.Fatal(err)
	}
	now := time.Now().Unix() / 30
	for s := now - 1; s <= now+1; s++ {
		if s > last {
			return totpAt(secret, time.Unix(s*30, 0))
		}
	}
	e.t.Fatalf("every code of the window is used for %s", email)
	return ""
}
