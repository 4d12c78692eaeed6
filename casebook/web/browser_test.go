package web_test

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
)

var screenshots = flag.String("screenshots", "", "keep the browser test's screenshots in this directory")

// chromium finds Debian's Chromium. Without it the browser test skips, except in CI,
// where a check that cannot run must fail.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "/usr/bin/chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is required in CI: apt-get install chromium")
	}
	t.Skip("chromium not installed (apt-get install chromium)")
	return ""
}

// TestBrowser drives a real Chromium through the whole customer flow: ask for a
// temporary password, log in with it, be forced to replace it, open a case, upload a
// file, download it back with the same SHA-256, and log out.
func TestBrowser(t *testing.T) {
	exe := chromium(t)
	e := newEnv(t)
	shots := t.TempDir()
	if *screenshots != "" {
		shots = *screenshots
		if err := os.MkdirAll(shots, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	downloads := t.TempDir()

	ctx := newBrowser(t, exe)
	b := &tab{t: t, ctx: ctx, base: e.ts.URL, dir: shots}
	shot, do, location := b.shot, b.do, b.location

	do("forgot password",
		chromedp.Navigate(e.ts.URL+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#email")),
	)
	shot("login")
	do("ask for a temporary password",
		chromedp.Click(chromedp.CSS(`a[href="/password/forgot"]`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/password/forgot"]`)),
		chromedp.SendKeys(chromedp.CSS("#email"), e.alice.Email),
		chromedp.Submit(chromedp.CSS(`form[action="/password/forgot"]`)),
		chromedp.WaitVisible(chromedp.CSS("p.notice")),
	)
	shot("forgot-sent")
	if _, err := e.srv.ProcessResetRequests(context.Background()); err != nil {
		t.Fatal(err)
	}
	mails := e.outboxPasswords(e.alice.Email)
	if len(mails) != 1 {
		t.Fatalf("%d temporary-password mails queued", len(mails))
	}
	do("log in with the temporary password",
		chromedp.Navigate(e.ts.URL+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#email")),
		chromedp.SendKeys(chromedp.CSS("#email"), e.alice.Email),
		chromedp.SendKeys(chromedp.CSS("#password"), mails[0]["password"]),
		chromedp.Submit(chromedp.CSS(`form[action="/login"]`)),
		chromedp.WaitVisible(chromedp.CSS("#new")),
	)
	if loc := location(); loc != "/password" {
		t.Fatalf("after the temporary password: %s", loc)
	}
	shot("set-new-password")
	do("try to go around it",
		chromedp.Navigate(e.ts.URL+"/cases/"+e.ref(e.case1)),
		chromedp.WaitVisible(chromedp.CSS("#new")),
	)
	if loc := location(); loc != "/password" {
		t.Errorf("case page reachable before the new password: %s", loc)
	}
	const newPW = "marigold tugboat under winter stars"
	do("set a new password",
		chromedp.SendKeys(chromedp.CSS("#new"), newPW),
		chromedp.SendKeys(chromedp.CSS("#confirm"), newPW),
		chromedp.Submit(chromedp.CSS(`main form[action="/password"]`)),
		chromedp.WaitVisible(chromedp.CSS("table.cases")),
	)
	shot("cases")
	do("open the case",
		chromedp.Click(chromedp.CSS(`a[href="/cases/`+e.ref(e.case1)+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("#files")),
	)
	shot("case")

	file := filepath.Join(t.TempDir(), "scan results.pdf")
	content := []byte("%PDF-1.4\n% " + rand.Text() + "\n" + strings.Repeat("lab values 1 2 3\n", 5000) + "%%EOF\n")
	if err := os.WriteFile(file, content, 0o600); err != nil {
		t.Fatal(err)
	}
	do("upload a file",
		chromedp.SetUploadFiles(chromedp.CSS("#files"), []string{file}),
		chromedp.Submit(chromedp.CSS(`form[enctype="multipart/form-data"]`)),
		chromedp.WaitVisible(chromedp.CSS("p.notice")),
	)
	notice, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("p.notice")))
	if notice != "1 file added." {
		t.Errorf("after upload: %q", notice)
	}
	shot("uploaded")

	progress := chromedp.Events(ctx, browser.DownloadProgress)
	do("download it back",
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
				Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: downloads, EventsEnabled: ptr(true),
			})
			return err
		}),
		chromedp.Click(chromedp.CSS(`table.files a[download]:not([href="/attachments/`+strconv.FormatInt(e.att1.ID, 10)+`"])`)),
	)
	var got []byte
	for ev, err := range progress {
		if err != nil {
			t.Fatal(err)
		}
		if ev.State == browser.DownloadProgressStateCanceled {
			t.Fatal("download canceled")
		}
		if ev.State == browser.DownloadProgressStateCompleted {
			if got, err = os.ReadFile(filepath.Join(downloads, ev.GUID)); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if sha(got) != sha(content) {
		t.Errorf("downloaded SHA-256 %s, uploaded %s", sha(got), sha(content))
	}

	do("see my sessions from the header",
		chromedp.Click(chromedp.CSS(`header a[href="/account/sessions"]`)),
		chromedp.WaitVisible(chromedp.CSS("table.sessions tr.current")),
	)
	shot("sessions")
	do("log out",
		chromedp.Click(chromedp.CSS(`header form[action="/logout"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/login"]`)),
	)
	shot("logged-out")
	do("the cases are gone",
		chromedp.Navigate(e.ts.URL+"/cases"),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/login"]`)),
	)
	if loc := location(); loc != "/login" {
		t.Errorf("after logout /cases led to %s", loc)
	}
	if len(e.audits("download")) != 1 || len(e.audits("upload")) != 1 || len(e.audits("password_change")) != 1 {
		t.Errorf("audit rows missing")
	}
	t.Logf("screenshots in %s", shots)
}

func ptr[T any](v T) *T { return &v }

// newBrowser starts a headless Chromium sized like a phone, ended with the test,
// and returns its context, bounded to two minutes.
func newBrowser(t *testing.T, exe string) context.Context {
	t.Helper()
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(412, 915), // a phone
		// The test server's certificate is self-signed; TLS is what makes the
		// __Host- Secure session cookie real.
		chromedp.IgnoreCertErrors,
	)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() {
		cancelT()
		cancel()
		cancelAlloc()
	})
	return ctx
}

// tab drives the browser of one test: each step that fails ends the test saying what
// it was doing, and shots are kept in dir, numbered in order ("" keeps none).
type tab struct {
	t    *testing.T
	ctx  context.Context
	base string
	dir  string
	step int
}

func (b *tab) shot(name string) {
	b.t.Helper()
	if b.dir == "" {
		return
	}
	buf, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	b.step++
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.dir, fmt.Sprintf("%02d-%s.png", b.step, name)), buf, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

func (b *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

func (b *tab) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// location is the page's URL without the test server's.
func (b *tab) location() string {
	b.t.Helper()
	loc, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		b.t.Fatal(err)
	}
	return strings.TrimPrefix(loc, b.base)
}

// shotsDir is where a test's shots go with -screenshots: a folder of its own named
// name; "" without the flag.
func shotsDir(name string) string {
	if *screenshots == "" {
		return ""
	}
	return filepath.Join(*screenshots, name)
}
