package postgres_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/postgres/pgtest"
)

func TestChatThreads(t *testing.T) {
	st := pgtest.Store(t)
	ctx := t.Context()
	if _, err := st.ThreadCase(ctx, casebook.SourceSlack, "T1", "C1", "1.1"); !errors.Is(err, casebook.ErrNotFound) {
		t.Fatalf("unknown thread: %v", err)
	}
	for _, n := range []int64{7, 8} {
		if err := st.TieThread(ctx, casebook.SourceSlack, "T1", "C1", "1.1", n); err != nil {
			t.Fatal(err)
		}
	}
	// The first tie wins; the same key on another platform or channel is another thread.
	if n, err := st.ThreadCase(ctx, casebook.SourceSlack, "T1", "C1", "1.1"); err != nil || n != 7 {
		t.Errorf("thread case = %d, %v; want 7", n, err)
	}
	for _, k := range [][3]string{{"discord", "T1", "C1"}, {"slack", "T2", "C1"}, {"slack", "T1", "C2"}} {
		if _, err := st.ThreadCase(ctx, casebook.Source(k[0]), k[1], k[2], "1.1"); !errors.Is(err, casebook.ErrNotFound) {
			t.Errorf("%v: %v", k, err)
		}
	}
}

func TestChatEvents(t *testing.T) {
	st := pgtest.Store(t)
	ctx := t.Context()
	for i, want := range []bool{true, false} {
		got, err := st.ClaimChatEvent(ctx, casebook.SourceSlack, "Ev1")
		if err != nil || got != want {
			t.Errorf("claim %d = %v, %v; want %v", i, got, err, want)
		}
	}
	if got, err := st.ClaimChatEvent(ctx, casebook.SourceDiscord, "Ev1"); err != nil || !got {
		t.Errorf("same id on another platform = %v, %v", got, err)
	}
	if _, events, err := st.PurgeChat(ctx, time.Now(), time.Now().Add(time.Hour)); err != nil || events != 2 {
		t.Errorf("purge = %d events, %v", events, err)
	}
	if got, err := st.ClaimChatEvent(ctx, casebook.SourceSlack, "Ev1"); err != nil || !got {
		t.Errorf("claim after purge = %v, %v", got, err)
	}
}

func TestChatHeldFiles(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	type held struct{ thread, author, file string }
	setup := []held{{"1.1", "U1", "F1"}, {"1.1", "U2", "F2"}, {"2.1", "U1", "F3"}, {"3.1", "U3", "F4"}}
	tests := []struct {
		name           string
		thread, author string
		at             time.Time
		want           []string
	}{
		{"by thread, whoever answers", "1.1", "U9", now, []string{"F1", "F2"}},
		{"by author at the top of the channel", "", "U1", now, []string{"F1", "F3"}},
		{"nothing for a stranger", "", "U9", now, nil},
		{"expired", "1.1", "U1", now.Add(15 * time.Minute), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := pgtest.Store(t)
			ctx := t.Context()
			for _, h := range setup {
				data, _ := json.Marshal(map[string]string{"id": h.file})
				if err := st.HoldChatFile(ctx, casebook.SourceSlack, "T1", "C1", h.thread, h.author, h.file, data, now.Add(15*time.Minute)); err != nil {
					t.Fatal(err)
				}
			}
			rows, err := st.TakeChatFiles(ctx, casebook.SourceSlack, "T1", "C1", tt.thread, tt.author, tt.at)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range rows {
				var d struct{ ID string }
				if err := json.Unmarshal(r, &d); err != nil {
					t.Fatal(err)
				}
				got = append(got, d.ID)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("taken (-want +got):\n%s", diff)
			}
			// Taking removes: a second answer gets nothing.
			again, err := st.TakeChatFiles(ctx, casebook.SourceSlack, "T1", "C1", tt.thread, tt.author, tt.at)
			if err != nil || len(again) != 0 {
				t.Errorf("taken twice: %d, %v", len(again), err)
			}
			files, _, err := st.PurgeChat(ctx, now.Add(time.Hour), now)
			if err != nil || files != int64(len(setup)-len(tt.want)) {
				t.Errorf("purged %d, %v; want %d", files, err, len(setup)-len(tt.want))
			}
		})
	}
}
