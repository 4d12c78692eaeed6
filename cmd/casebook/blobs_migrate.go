package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/blob"
)

// migrateReport says what `blobs migrate` did.
type migrateReport struct {
	To string `json:"to"`
	// Blobs is how many distinct blobs rows name; Copied of them were copied now,
	// Present were there already (an earlier run), Missing are not in this store.
	Blobs   int      `json:"blobs"`
	Copied  int      `json:"copied"`
	Present int      `json:"present"`
	Bytes   int64    `json:"bytes"`
	Missing []string `json:"missing"`
}

func blobsMigrateCommand() command {
	var to string
	return command{
		usage: "--to URL [--json]",
		help:  "copy every blob a row names from the current store (--blob-url) to another, as stored; resumable; then switch --blob-url",
		flags: func(fs *flag.FlagSet, _ *app) {
			fs.StringVar(&to, "to", "", "the store to copy to: file:///PATH or s3://BUCKET/PREFIX?endpoint=…")
		},
		run: func(ctx context.Context, a *app, _ []string) error {
			if to == "" {
				return fmt.Errorf("%w: --to is required", errUsage)
			}
			if err := blob.CheckURL(to); err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			if to == a.blobURL() {
				return errors.New("--to names the current store (--blob-url): nothing to copy")
			}
			st, from, err := a.storeAndBlobs(ctx)
			if err != nil {
				return err
			}
			dst, err := a.blobBackend(ctx, to)
			if err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			rep, err := a.migrate(ctx, st, from.Backend(), dst)
			rep.To = dst.String()
			if err != nil {
				return err
			}
			if err := a.print(rep, fmt.Sprintf("%d blobs: %d copied (%s), %d already there, %d missing here; when no instance writes any more, run it once more, then set --blob-url %s",
				rep.Blobs, rep.Copied, casebook.FormatSize(rep.Bytes), rep.Present, len(rep.Missing), to)); err != nil {
				return err
			}
			if len(rep.Missing) > 0 {
				return fmt.Errorf("%d blobs rows name are missing from the current store (see `casebook blobs verify`)", len(rep.Missing))
			}
			return nil
		},
	}
}

// migrate copies every blob a row names from one backend to the other, with a
// progress bar. The keys go first, so that the destination refuses a wrong key from
// the first start on it.
func (a *app) migrate(ctx context.Context, refs casebook.BlobRefLister, from, to blob.Backend) (migrateReport, error) {
	rep := migrateReport{Missing: []string{}}
	if err := blob.CopyKeyIDs(ctx, from, to); err != nil {
		return rep, err
	}
	seen := map[string]bool{}
	var keys []string
	if err := refs.BlobRefs(ctx, func(r casebook.BlobRef) error {
		if !seen[r.Key] {
			seen[r.Key] = true
			keys = append(keys, r.Key)
		}
		return nil
	}); err != nil {
		return rep, err
	}
	rep.Blobs = len(keys)
	bar := newProgress(a.stderr, isTerminal(a.stderr), "migrate", len(keys), time.Now)
	bar.unit, bar.units = "blobs", "blobs"
	for i, k := range keys {
		copied, n, err := blob.Copy(ctx, from, to, k)
		switch {
		case errors.Is(err, casebook.ErrNotFound):
			rep.Missing = append(rep.Missing, k)
		case err != nil:
			bar.finish()
			return rep, fmt.Errorf("after %d of %d blobs (run it again to go on): %w", i, len(keys), err)
		case !copied:
			rep.Present++
		default:
			rep.Copied++
			rep.Bytes += n
		}
		bar.update(i+1, fmt.Sprintf("%d copied (%s), %d already there", rep.Copied, casebook.FormatSize(rep.Bytes), rep.Present))
	}
	bar.finish()
	return rep, nil
}
