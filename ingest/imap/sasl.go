package imap

import (
	"errors"
	"fmt"

	"github.com/emersion/go-sasl"
)

// xoauth2 is the XOAUTH2 SASL mechanism of Google and Microsoft: the user and an
// OAuth 2.0 bearer token in one initial response.
type xoauth2 struct {
	user, token string
	// failure is the server's JSON error challenge, kept for the error message.
	failure []byte
}

var _ sasl.Client = (*xoauth2)(nil)

func (a *xoauth2) Start() (string, []byte, error) {
	return "XOAUTH2", []byte("user=" + a.user + "\x01auth=Bearer " + a.token + "\x01\x01"), nil
}

// Next answers the server's error challenge with an empty response: the protocol
// requires one before the server sends its final NO, and returning an error here
// would leave the continuation unanswered and the connection hung.
func (a *xoauth2) Next(challenge []byte) ([]byte, error) {
	a.failure = challenge
	return []byte{}, nil
}

// err adds the server's explanation to a failed authentication.
func (a *xoauth2) err(err error) error {
	if len(a.failure) == 0 {
		return err
	}
	return fmt.Errorf("%w (server said %s)", err, a.failure)
}

var errNoXOAUTH2 = errors.New("server does not offer AUTH=XOAUTH2")
