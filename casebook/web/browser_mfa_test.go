package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserMFA drives Chromium through a staff member's second factor: sent to
// enrolment right after the password, nothing else reachable before it, the QR code
// shown under the page's CSP, a code computed from the secret the page shows, the
// recovery codes; then a login with a fresh code, one with a recovery code, and the
// same recovery code refused the second time.
func TestBrowserMFA(t *testing.T) {
	exe := chromium(t)
	e := newEnv(t)
	ctx := newBrowser(t, exe)
	b := &tab{t: t, ctx: ctx, base: e.ts.URL, dir: shotsDir("mfa")}
	shot, do, text, location := b.shot, b.do, b.text, b.location
	login := func(what string) {
		t.Helper()
		do(what,
			chromedp.Navigate(e.ts.URL+"/login"),
			chromedp.WaitVisible(chromedp.CSS("#email")),
			chromedp.SendKeys(chromedp.CSS("#email"), e.sam.Email),
			chromedp.SendKeys(chromedp.CSS("#password"), samPW),
			chromedp.Submit(chromedp.CSS(`form[action="/login"]`)),
			chromedp.WaitVisible(chromedp.CSS("#code")),
		)
	}
	typeCode := func(what, code, wait string) {
		t.Helper()
		do(what,
			chromedp.SendKeys(chromedp.CSS("#code"), code),
			chromedp.Submit(chromedp.CSS(`main form`)),
			chromedp.WaitVisible(chromedp.CSS(wait)),
		)
	}
	logout := func() {
		t.Helper()
		do("log out",
			chromedp.Click(chromedp.CSS(`header form[action="/logout"] button`)),
			chromedp.WaitVisible(chromedp.CSS(`form[action="/login"]`)),
		)
	}

	var err error
	login("log in with the password")
	if loc := location(); loc != "/mfa/enrol" {
		t.Fatalf("after the password: %s, want the enrolment page", loc)
	}
	// The image loads after the page: give it a moment.
	qrShown := false
	for deadline := time.Now().Add(5 * time.Second); !qrShown && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		qrShown, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const i = document.querySelector("img.qr"); return i.complete && i.naturalWidth >= 200 })()`))
		if err != nil {
			t.Fatal(err)
		}
	}
	if !qrShown {
		t.Errorf("the QR code is not shown")
	}
	shot("enrol")
	secret := strings.ReplaceAll(text("#secret"), " ", "")
	if len(secret) != 32 {
		t.Fatalf("secret on the page: %q", secret)
	}
	do("try to go around it",
		chromedp.Navigate(e.ts.URL+"/cases/"+e.ref(e.case1)),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/login"]`)),
	)
	if loc := location(); loc != "/login" {
		t.Errorf("case page before the second factor: %s", loc)
	}
	do("back to enrolment",
		chromedp.Navigate(e.ts.URL+"/mfa/enrol"),
		chromedp.WaitVisible(chromedp.CSS("#secret")),
	)
	if again := strings.ReplaceAll(text("#secret"), " ", ""); again != secret {
		t.Errorf("the secret changed on reload: %s then %s", secret, again)
	}
	typeCode("confirm with the app's code", totpAt(secret, time.Now()), "#recovery-codes")
	shot("recovery-codes")
	codes := strings.Fields(text("#recovery-codes"))
	if len(codes) != 10 {
		t.Fatalf("recovery codes shown: %q", codes)
	}
	do("continue",
		chromedp.Click(chromedp.CSS("#continue")),
		chromedp.WaitVisible(chromedp.CSS("table.cases")),
	)
	logout()

	e.secrets[e.sam.Email] = secret
	login("log in again")
	if loc := location(); loc != "/login/code" {
		t.Fatalf("second login: %s, want the code page", loc)
	}
	shot("code")
	typeCode("type a fresh code", e.totpCode(e.sam.Email), "table.cases")
	logout()

	login("log in with a recovery code")
	typeCode("type a recovery code", codes[3], "table.cases")
	if n := text("p.notice"); !strings.Contains(n, "recovery code") || !strings.Contains(n, "9 are left") {
		t.Errorf("notice after a recovery code: %q", n)
	}
	shot("recovery-login")
	logout()

	login("the same recovery code again")
	typeCode("type it again", codes[3], "#code-problem")
	if loc := location(); loc != "/login/code" {
		t.Errorf("a used recovery code led to %s", loc)
	}
	shot("recovery-reused")

	want := []string{"password_ok_enrol_pending", "success_enrolled", "password_ok_code_pending", "success_totp",
		"password_ok_code_pending", "success_recovery_code", "password_ok_code_pending", "recovery_code_wrong"}
	if got := loginOutcomes(e); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("login audit: %v, want %v", got, want)
	}
}
