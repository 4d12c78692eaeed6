package casebook

import (
	"context"
	"errors"
	"fmt"
)

// Release is a quarantined message as it was released onto a case.
type Release struct {
	ID       int64  `json:"id"`
	Case     string `json:"case"`
	Result   Result `json:"result"`
	UpdateID int64  `json:"update_id"`
}

// pendingItem loads a quarantined message a person may still decide on.
func (d *Desk) pendingItem(ctx context.Context, id int64) (QuarantineItem, error) {
	it, err := d.store.QuarantineByID(ctx, id)
	if err != nil {
		return it, err
	}
	if it.Status != QuarantinePending {
		return it, resolvedErr(it)
	}
	return it, nil
}

func resolvedErr(it QuarantineItem) error {
	who := ""
	if it.ResolvedBy != "" {
		who = " by " + it.ResolvedBy
	}
	return fmt.Errorf("%w: quarantine %d was %s%s", ErrAlreadyResolved, it.ID, it.Status, who)
}

// ReleaseQuarantine adds a quarantined message to the case the staff member names,
// through AddUpdate. The staff member vouches for the sender: their name is kept
// with the update, on the quarantine row and in the audit log. An unknown or closed
// case refuses the release and the message stays in the queue. Released already (a
// colleague's click) is ErrAlreadyResolved; the message is added once whatever
// happens, since its update keeps the message's own external id.
func (d *Desk) ReleaseQuarantine(ctx context.Context, by Actor, id, caseNumber int64) (Release, error) {
	ref := d.opt.Refs.Format(caseNumber)
	if err := by.staffOnly(); err != nil {
		return Release{}, fmt.Errorf("release quarantine %d: %w", id, err)
	}
	if d.opt.Releaser == nil {
		return Release{}, fmt.Errorf("release quarantine %d: no mail reader is configured", id)
	}
	it, err := d.pendingItem(ctx, id)
	if err != nil {
		return Release{}, fmt.Errorf("release quarantine %d: %w", id, err)
	}
	if it.Kind != QuarantineKindQuarantined {
		return Release{}, fmt.Errorf("release quarantine %d: %w: it is an ignored %s, kept for the record", id, ErrInvalidInput, it.ReasonCode)
	}
	if it.RawBlob == "" {
		return Release{}, fmt.Errorf("release quarantine %d: %w: the raw message was not kept (over the size limit); it stays in the mailbox's Casebook/Quarantine folder", id, ErrInvalidInput)
	}
	c, err := d.store.CaseByNumber(ctx, caseNumber)
	if err != nil {
		return Release{}, fmt.Errorf("release quarantine %d to %s: %w", id, ref, err)
	}
	if c.Status == StatusClosed {
		return Release{}, fmt.Errorf("release quarantine %d to %s: %w", id, ref, ErrCaseClosed)
	}
	out, err := d.opt.Releaser.Release(ctx, it.RawBlob, caseNumber, by.name())
	if err != nil {
		return Release{}, fmt.Errorf("release quarantine %d to %s: %w", id, ref, err)
	}
	res := QuarantineResolution{ID: id, Status: QuarantineReleased,
		Audit: by.audit("quarantine_release", fmt.Sprintf("quarantine:%d", id), fmt.Sprintf("success: %s onto %s", out.Result, ref))}
	if out.UpdateID != 0 {
		res.UpdateID = &out.UpdateID
	}
	if by.User != nil {
		res.By = &by.User.ID
	}
	if err := d.store.ResolveQuarantine(ctx, res); err != nil {
		if errors.Is(err, ErrAlreadyResolved) {
			if again, lerr := d.store.QuarantineByID(ctx, id); lerr == nil {
				err = resolvedErr(again)
			}
		}
		return Release{}, fmt.Errorf("release quarantine %d: %w", id, err)
	}
	d.log.InfoContext(ctx, "quarantine released", "quarantine", id, "case", ref, "result", out.Result, "by", by.name())
	return Release{ID: id, Case: ref, Result: out.Result, UpdateID: out.UpdateID}, nil
}

// DropQuarantine closes a quarantined message without adding it to any case.
func (d *Desk) DropQuarantine(ctx context.Context, by Actor, id int64) error {
	if err := by.staffOnly(); err != nil {
		return fmt.Errorf("drop quarantine %d: %w", id, err)
	}
	if _, err := d.pendingItem(ctx, id); err != nil {
		return fmt.Errorf("drop quarantine %d: %w", id, err)
	}
	res := QuarantineResolution{ID: id, Status: QuarantineDropped,
		Audit: by.audit("quarantine_drop", fmt.Sprintf("quarantine:%d", id), "success")}
	if by.User != nil {
		res.By = &by.User.ID
	}
	if err := d.store.ResolveQuarantine(ctx, res); err != nil {
		if errors.Is(err, ErrAlreadyResolved) {
			if again, lerr := d.store.QuarantineByID(ctx, id); lerr == nil {
				err = resolvedErr(again)
			}
		}
		return fmt.Errorf("drop quarantine %d: %w", id, err)
	}
	return nil
}
