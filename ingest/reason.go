package ingest

import (
	"errors"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/ingest/mail"
)

// Code names why a message was quarantined or ignored. Codes come from a fixed set,
// so the metric label, the quarantine row's reason_code and the log's reason_code are
// all the same word; the sentence in Result.Reason is for the person who reads it.
type Code string

// The codes.
const (
	CodeNoCaseRef          Code = "no_case_ref"
	CodeAmbiguousCase      Code = "ambiguous_case"
	CodeCaseNotFound       Code = "case_not_found"
	CodeNotAllowed         Code = "not_allowed"
	CodeCaseClosed         Code = "case_closed"
	CodeTooLarge           Code = "too_large"
	CodeTooManyFiles       Code = "too_many_files"
	CodeOverLimit          Code = "over_limit"
	CodeMalformed          Code = "malformed"
	CodeInvalidInput       Code = "invalid_input"
	CodeAutoReply          Code = "auto_reply"
	CodeFailedRepeatedly   Code = "failed_repeatedly"
	CodeSenderNotVerified  Code = "sender_not_verified"
	CodeTokenExpired       Code = "token_expired"
	CodeFileTypeNotAllowed Code = "file_type_not_allowed"
	CodeMalware            Code = "malware"
	CodeUserDisabled       Code = "user_disabled"
	CodeOther              Code = "other"
)

// ErrSenderNotVerified refuses a mail whose sender the verdict does not vouch for
// enough for the rule that matched it (see Policy).
var ErrSenderNotVerified = errors.New("sender is not verified")

// codes maps the errors about a message to their codes, most specific first.
var codes = []struct {
	err  error
	code Code
}{
	{ErrSenderNotVerified, CodeSenderNotVerified},
	{casebook.ErrTokenExpired, CodeTokenExpired},
	{casebook.ErrFileTypeNotAllowed, CodeFileTypeNotAllowed},
	{casebook.ErrInfected, CodeMalware},
	{casebook.ErrUserDisabled, CodeUserDisabled},
	{casebook.ErrNoCaseRef, CodeNoCaseRef},
	{casebook.ErrAmbiguousCase, CodeAmbiguousCase},
	{casebook.ErrCaseNotFound, CodeCaseNotFound},
	{casebook.ErrNotAllowed, CodeNotAllowed},
	{casebook.ErrCaseClosed, CodeCaseClosed},
	{casebook.ErrTooLarge, CodeTooLarge},
	{casebook.ErrTooManyFiles, CodeTooManyFiles},
	{mail.ErrLimit, CodeOverLimit},
	{mail.ErrMalformed, CodeMalformed},
	{casebook.ErrInvalidInput, CodeInvalidInput},
}

// CodeOf returns the code of an error about a message: isMessageProblem(err) holds
// exactly when it is not CodeOther.
func CodeOf(err error) Code {
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return CodeOther
}
