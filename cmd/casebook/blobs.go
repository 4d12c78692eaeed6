package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/blob"
	"github.com/casebookhq/casebook/casebook/postgres"
)

// blobSweepEvery is how often `serve` sweeps unnamed blobs; blobSweepFirst how long
// after start it first does, so a restart loop does not sweep on every start.
const (
	blobSweepEvery = 24 * time.Hour
	blobSweepFirst = 10 * time.Minute
)

func blobGraceFlag(fs *flag.FlagSet, c *Config) {
	fs.DurationVar(&c.BlobGrace, "blob-grace", casebook.DefaultBlobGrace, "how long a blob no row names is kept before the sweep removes it")
}

func blobsGCCommand() command {
	var dryRun bool
	return command{
		usage: "[--dry-run] [--json]",
		help:  "remove blobs no row names that are older than --blob-grace (24h), under a lock so one instance sweeps",
		flags: func(fs *flag.FlagSet, a *app) {
			fs.BoolVar(&dryRun, "dry-run", false, "report what would be removed, remove nothing")
			blobGraceFlag(fs, &a.cfg)
		},
		run: func(ctx context.Context, a *app, _ []string) error {
			st, bl, err := a.storeAndBlobs(ctx)
			if err != nil {
				return err
			}
			rep, err := casebook.SweepBlobs(ctx, st, bl, casebook.SweepOptions{Grace: a.cfg.BlobGrace, DryRun: dryRun})
			if err != nil {
				return err
			}
			return a.print(rep, sweepSummary(rep))
		},
	}
}

func sweepSummary(rep casebook.SweepReport) string {
	if rep.Skipped {
		return "another instance is sweeping: nothing done"
	}
	verb := fmt.Sprintf("%d removed", rep.Removed)
	if rep.DryRun {
		verb = "none removed (--dry-run)"
	}
	return fmt.Sprintf("%d blobs, %d within the grace period, %d unnamed and older (%s): %s",
		rep.Blobs, rep.Young, rep.Unnamed, casebook.FormatSize(rep.UnnamedBytes), verb)
}

func blobsVerifyCommand() command {
	return command{
		usage: "[--json]",
		help:  "read back every blob a row names and report those missing or damaged (exit 1 if any)",
		run: func(ctx context.Context, a *app, _ []string) error {
			st, bl, err := a.storeAndBlobs(ctx)
			if err != nil {
				return err
			}
			rep, err := casebook.VerifyBlobs(ctx, st, bl, nil)
			if err != nil {
				return err
			}
			if a.cfg.JSON {
				if err := a.print(rep, ""); err != nil {
					return err
				}
			} else {
				for _, p := range rep.Problems {
					fmt.Fprintf(a.stdout, "%-8s %s  %s\n", p.Problem, p.Key, p.Detail)
				}
				fmt.Fprintf(a.stdout, "%d blobs read (%s), %d missing or damaged\n", rep.Checked, casebook.FormatSize(rep.Bytes), len(rep.Problems))
			}
			if len(rep.Problems) > 0 {
				return fmt.Errorf("%d of %d blobs are missing or damaged", len(rep.Problems), rep.Checked)
			}
			return nil
		},
	}
}

func blobsRekeyCommand() command {
	var newKeyFile string
	return command{
		usage: "--new-key-file PATH",
		help:  "wrap every blob's data key (and queued temporary passwords) under a new key too; no content is re-encrypted",
		flags: func(fs *flag.FlagSet, _ *app) {
			fs.StringVar(&newKeyFile, "new-key-file", "", "the new key (32 random bytes, raw or base64)")
		},
		run: func(ctx context.Context, a *app, _ []string) error {
			if newKeyFile == "" {
				return fmt.Errorf("%w: --new-key-file is required", errUsage)
			}
			cur, err := a.blobKey()
			if err != nil {
				return err
			}
			if cur == nil {
				return errors.New("--blob-key-file names no key: a store without a key has nothing to rekey (use `casebook blobs encrypt`)")
			}
			next, err := blob.ReadKeyFile(newKeyFile)
			if err != nil {
				return fmt.Errorf("--new-key-file: %w", err)
			}
			st, err := a.store(ctx)
			if err != nil {
				return err
			}
			bl, err := a.openBlobs(ctx, a.blobURL(), cur, next)
			if err != nil {
				return err
			}
			return a.rekey(ctx, st, bl, cur, next)
		},
	}
}

// rekey wraps every blob under next as well as cur (or, when next is cur, under cur
// alone), then records which keys open the store, then does the same for queued
// temporary passwords. Every step is idempotent: an interrupted run is run again.
func (a *app) rekey(ctx context.Context, st *postgres.Store, bl *blob.Store, cur, next *blob.Key) error {
	var keys []*blob.Key
	if cur.Equal(next) {
		keys = []*blob.Key{next}
	} else {
		keys = []*blob.Key{cur, next}
	}
	var all []string
	if err := bl.Walk(ctx, func(b casebook.BlobInfo) error {
		all = append(all, b.Key)
		return nil
	}); err != nil {
		return err
	}
	bar := newProgress(a.stderr, isTerminal(a.stderr), "rekey", len(all), time.Now)
	bar.unit, bar.units = "blobs", "blobs"
	var rewrapped, failed int
	for i, k := range all {
		changed, err := bl.Rewrap(ctx, k, next)
		switch {
		case errors.Is(err, casebook.ErrNotFound):
		case err != nil:
			failed++
			a.log.Error("cannot rewrap blob", "blob", k, "error", err)
		case changed:
			rewrapped++
		}
		bar.update(i+1, fmt.Sprintf("%d rewrapped, %d failed", rewrapped, failed))
	}
	bar.finish()
	if failed > 0 {
		return fmt.Errorf("%d blobs could not be rewrapped (see the log); the store still opens with key %s", failed, cur.ID())
	}
	ids := make([]string, len(keys))
	boxes := make([]postgres.SecretBox, len(keys))
	for i, k := range keys {
		ids[i], boxes[i] = k.ID(), k
	}
	if err := bl.SetKeyIDs(ctx, ids); err != nil {
		return err
	}
	sealed, err := st.ResealOutboxSecrets(ctx, []postgres.SecretBox{cur, next}, boxes)
	if err != nil {
		return err
	}
	out := struct {
		Blobs     int      `json:"blobs"`
		Rewrapped int      `json:"rewrapped"`
		Outbox    int      `json:"outbox_resealed"`
		KeyIDs    []string `json:"key_ids"`
	}{len(all), rewrapped, sealed, ids}
	return a.print(out, fmt.Sprintf("%d blobs, %d rewrapped, %d queued passwords resealed; the store now opens with key %v",
		len(all), rewrapped, sealed, ids))
}

func blobsEncryptCommand() command {
	return command{
		usage: "[--json]",
		help:  "encrypt the blobs stored before a key was configured (resumable; needs --blob-key-file)",
		run: func(ctx context.Context, a *app, _ []string) error {
			if a.cfg.BlobKeyFile == "" {
				return errors.New("--blob-key-file is required: blobs are encrypted under it")
			}
			st, bl, err := a.storeAndBlobs(ctx)
			if err != nil {
				return err
			}
			var bar *progress
			rep, err := casebook.EncryptBlobs(ctx, st, bl, func(done, total int) {
				if bar == nil {
					bar = newProgress(a.stderr, isTerminal(a.stderr), "encrypt", total, time.Now)
					bar.unit, bar.units = "blobs", "blobs"
				}
				bar.update(done, "")
			})
			if bar != nil {
				bar.finish()
			}
			if err != nil {
				return err
			}
			return a.print(rep, fmt.Sprintf("%d plaintext blobs, %d encrypted (%s), %d rows now name the encrypted copy",
				rep.Plaintext, rep.Encrypted, casebook.FormatSize(rep.Bytes), rep.Rows))
		},
	}
}

// blobSweepComponent sweeps unnamed blobs once a day while `serve` runs. Every
// instance runs it; the advisory lock lets one sweep.
func (a *app) blobSweepComponent(ctx context.Context) ([]component, error) {
	st, _, bl, err := a.core(ctx)
	if err != nil {
		return nil, err
	}
	return []component{{name: "blob sweep", run: func(ctx context.Context) error {
		t := time.NewTimer(blobSweepFirst)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
			rep, err := casebook.SweepBlobs(ctx, st, bl, casebook.SweepOptions{Grace: a.cfg.BlobGrace})
			if err != nil && ctx.Err() == nil {
				a.log.Error("blob sweep failed", "error", err)
			} else if err == nil && !rep.Skipped {
				a.log.Info("blob sweep", "blobs", rep.Blobs, "unnamed", rep.Unnamed, "removed", rep.Removed, "bytes", rep.UnnamedBytes)
			}
			t.Reset(blobSweepEvery)
		}
	}}}, nil
}
