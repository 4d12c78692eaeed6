package metrics_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/metrics"
)

// BenchmarkHTTP compares a request through the ServeMux alone with one through the
// timing middleware, so that its cost per request is known.
func BenchmarkHTTP(b *testing.B) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /cases/{ref}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	for _, bb := range []struct {
		name string
		h    http.Handler
	}{
		{"bare", mux},
		{"timed", metrics.New().HTTP(mux)},
	} {
		b.Run(bb.name, func(b *testing.B) {
			r := httptest.NewRequest("GET", "/cases/CASE-000123", nil)
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				bb.h.ServeHTTP(w, r)
			}
		})
	}
}

// BenchmarkObserveUpdate is what the write path pays per AddUpdate for its counts.
func BenchmarkObserveUpdate(b *testing.B) {
	m := metrics.New()
	o := casebook.Outcome{Result: casebook.ResultAdded, Attachments: []casebook.Attachment{{Size: 1 << 20}, {Size: 2 << 20}}}
	b.ReportAllocs()
	for b.Loop() {
		m.ObserveUpdate(casebook.SourceEmail, o, nil)
	}
}
