package web_test

import (
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/casebookhq/casebook/casebook/web"
)

// mannWhitneyZ is the normal approximation of the Mann–Whitney U statistic of a
// against b (ties take their mean rank): |z| above 3.29 means the two samples differ
// in location at p < 0.001, two-sided. A rank test, because latencies are skewed and
// a few scheduler stalls must not decide the answer.
func mannWhitneyZ(a, b []float64) float64 {
	type obs struct {
		v     float64
		fromA bool
	}
	all := make([]obs, 0, len(a)+len(b))
	for _, v := range a {
		all = append(all, obs{v, true})
	}
	for _, v := range b {
		all = append(all, obs{v, false})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].v < all[j].v })
	rankSumA := 0.0
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].v == all[i].v {
			j++
		}
		rank := float64(i+j+1) / 2 // mean of ranks i+1 … j
		for k := i; k < j; k++ {
			if all[k].fromA {
				rankSumA += rank
			}
		}
		i = j
	}
	n1, n2 := float64(len(a)), float64(len(b))
	u := rankSumA - n1*(n1+1)/2
	return (u - n1*n2/2) / math.Sqrt(n1*n2*(n1+n2+1)/12)
}

func TestMannWhitneyZ(t *testing.T) {
	var same, shifted, base []float64
	for i := range 200 {
		base = append(base, float64(i))
		same = append(same, float64(199-i))
		shifted = append(shifted, float64(i+40))
	}
	if z := mannWhitneyZ(base, same); math.Abs(z) > 0.01 {
		t.Errorf("identical samples: z = %.2f", z)
	}
	if z := mannWhitneyZ(base, shifted); z > -3.29 {
		t.Errorf("a shift of 40 of 200 is not seen: z = %.2f", z)
	}
}

// "Forgot your password?" takes the same time for a known and an unknown address:
// 250 requests each, compared with a rank test. They go in pairs, one of each in a
// random order, so that bursts of load from other processes fall on both alike.
func TestForgotPasswordTiming(t *testing.T) {
	const samples = 250
	e := newEnv(t, func(o *web.Options) { o.IP = web.Throttle{Free: 1 << 20, Window: time.Hour, Max: time.Minute} })
	h := e.srv.Handler()
	once := func(email string) time.Duration {
		req := httptest.NewRequest("POST", "https://casebook.test/password/forgot", strings.NewReader(url.Values{"email": {email}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(rec, req)
		d := time.Since(start)
		if rec.Code != http.StatusOK {
			t.Fatalf("forgot %s: %d", email, rec.Code)
		}
		return d
	}
	for range 20 { // warm the pools and the statement caches
		once(e.alice.Email)
		once("warm@acme.test")
	}
	order := make([]bool, 0, 2*samples)
	for range samples {
		first := rand.IntN(2) == 0
		order = append(order, first, !first)
	}
	var known, unknown []float64
	for i, isKnown := range order {
		if isKnown {
			known = append(known, float64(once(e.alice.Email)))
		} else {
			// A different unknown address each time, as an attacker probing would use.
			unknown = append(unknown, float64(once("nobody"+string(rune('a'+i%26))+"@acme.test")))
		}
	}
	z := mannWhitneyZ(known, unknown)
	t.Logf("known median %v, unknown median %v, Mann–Whitney z = %.2f", median(known), median(unknown), z)
	if math.Abs(z) > 3.29 {
		t.Errorf("known and unknown addresses differ in time: z = %.2f (p < 0.001)", z)
	}
	// The work happens behind the page: every request is handled and audited.
	if n, err := e.srv.ProcessResetRequests(t.Context()); err != nil || n != 2*samples+40 {
		t.Errorf("worker handled %d, %v", n, err)
	}
	if got := len(e.audits("reset_request")); got != 2*samples+40 {
		t.Errorf("%d reset_request audit rows", got)
	}
}

func median(xs []float64) time.Duration {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return time.Duration(s[len(s)/2])
}
