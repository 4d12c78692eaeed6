package oauthtest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"
)

// verifyAssertion checks a client assertion as Entra ID does: a PS256 signature by
// the certificate's key, the certificate's thumbprint named, audience the token
// endpoint, issuer and subject the client, not expired, with a jti.
func verifyAssertion(key *rsa.PublicKey, jwt, clientID, tokenURL string) error {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return errors.New("not a JWT")
	}
	var h struct {
		Alg  string `json:"alg"`
		Typ  string `json:"typ"`
		X5t  string `json:"x5t#S256"`
		X5t1 string `json:"x5t"`
	}
	var c struct {
		Aud, Iss, Sub, Jti string
		Exp, Nbf           int64
	}
	if err := decode(parts[0], &h); err != nil {
		return err
	}
	if err := decode(parts[1], &c); err != nil {
		return err
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	now := time.Now().Unix()
	switch {
	case h.Alg != "PS256" || h.Typ != "JWT" || (h.X5t == "" && h.X5t1 == ""):
		return fmt.Errorf("header %+v", h)
	case rsa.VerifyPSS(key, crypto.SHA256, sum[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) != nil:
		return errors.New("signature")
	case c.Aud != tokenURL || c.Iss != clientID || c.Sub != clientID || c.Jti == "":
		return fmt.Errorf("claims %+v", c)
	case c.Exp < now || c.Nbf > now+60:
		return errors.New("outside its validity")
	}
	return nil
}

func decode(part string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// Certificate makes a self-signed RSA certificate valid until notAfter, as one
// uploads to an app registration, and returns its PEM (certificate and PKCS #8 key)
// and public key.
func Certificate(t testing.TB, notAfter time.Time) (pemBytes []byte, key *rsa.PublicKey) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "casebook test"},
		NotBefore:    notAfter.Add(-48 * time.Hour),
		NotAfter:     notAfter,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	out = append(out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk})...)
	return out, &k.PublicKey
}
