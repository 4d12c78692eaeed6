package web_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alexedwards/scs/postgresstore"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/password"
	"github.com/casebookhq/casebook/casebook/postgres"
	"github.com/casebookhq/casebook/casebook/postgres/pgtest"
	"github.com/casebookhq/casebook/casebook/web"
)

// hammerClients is how many connections the attacker keeps busy.
const hammerClients = 64

// BenchmarkLoginUnderHammer measures a normal user's login, with the production
// Argon2id parameters and hasher (4 at a time), first on an idle server and then while
// 64 clients from one address hammer a locked account with wrong passwords. It
// reports p50 and p99 of both phases, their p99 ratio (aim: at most 2) and the rate of
// refused hammer requests. -benchtime Nx is the logins measured per phase:
//
//	go test -run '^$' -bench LoginUnderHammer -benchtime 200x ./casebook/web
func BenchmarkLoginUnderHammer(b *testing.B) {
	ctx := context.Background()
	st := pgtest.Store(b)
	hasher := password.NewHasher(password.DefaultParams, 4)
	org, err := st.AddOrg(ctx, "Acme Health", "acme.test")
	if err != nil {
		b.Fatal(err)
	}
	for _, email := range []string{"alice@acme.test", "victim@acme.test"} {
		h, err := hasher.Hash(ctx, alicePW)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := st.AddUser(ctx, postgres.NewUser{OrgID: &org.ID, Email: email, PasswordHash: h}); err != nil {
			b.Fatal(err)
		}
	}
	srv, err := web.New(pgStore{st, &atomic.Bool{}}, nil, nil, web.Options{
		Refs: casebook.DefaultRefFormat, Hasher: hasher, InsecureCookies: true, BehindProxy: true,
		Sessions: postgresstore.NewWithCleanupInterval(st.DB().DB, 0),
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	post := func(hc *http.Client, from, email, pw string) int {
		req, _ := http.NewRequest("POST", ts.URL+"/login", strings.NewReader(url.Values{"email": {email}, "password": {pw}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", from)
		r, err := hc.Do(req)
		if err != nil {
			b.Error(err)
			return 0
		}
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
		return r.StatusCode
	}
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	// Each login is a new browser of the normal user, from their own address.
	logins := func(n int) []time.Duration {
		ds := make([]time.Duration, 0, n)
		for range n {
			jar, _ := cookiejar.New(nil)
			hc := &http.Client{Jar: jar, CheckRedirect: noRedirect}
			start := time.Now()
			if code := post(hc, "198.51.100.7", "alice@acme.test", alicePW); code != http.StatusSeeOther {
				b.Fatalf("normal login: %d", code)
			}
			ds = append(ds, time.Since(start))
		}
		return ds
	}

	logins(5) // warm up
	b.ResetTimer()
	idle := logins(b.N)

	hctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var refused atomic.Int64
	hashesBefore := hasher.Hashes()
	started := time.Now()
	for range hammerClients {
		wg.Go(func() {
			hc := &http.Client{CheckRedirect: noRedirect}
			for hctx.Err() == nil {
				if post(hc, "203.0.113.9", "victim@acme.test", "wrong wrong wrong wrong") == http.StatusOK {
					refused.Add(1)
				}
			}
		})
	}
	time.Sleep(time.Second) // let the hammer lock the account and fill the pipes
	hammered := logins(b.N)
	stop()
	wg.Wait()
	elapsed := time.Since(started)
	b.StopTimer()

	idle50, idle99 := percentile(idle, 50), percentile(idle, 99)
	ham50, ham99 := percentile(hammered, 50), percentile(hammered, 99)
	b.ReportMetric(ms(idle50), "idle_p50_ms")
	b.ReportMetric(ms(idle99), "idle_p99_ms")
	b.ReportMetric(ms(ham50), "hammer_p50_ms")
	b.ReportMetric(ms(ham99), "hammer_p99_ms")
	b.ReportMetric(float64(ham99)/float64(idle99), "p99_ratio")
	b.ReportMetric(float64(refused.Load())/elapsed.Seconds(), "refused_req/s")
	// The normal user's logins are b.N hashes; what the hammer cost is the rest.
	b.ReportMetric(float64(hasher.Hashes()-hashesBefore-uint64(b.N)), "hammer_hashes")
}

func percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
