package oauth

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"
)

// assertionType is RFC 7523's client assertion type for a signed JWT.
const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// credential is a client certificate and its private key.
type credential struct {
	cert *x509.Certificate
	key  *rsa.PrivateKey
}

// loadCertificate reads a PEM file holding the certificate uploaded to the app
// registration and its RSA private key (PKCS #8 or PKCS #1), and refuses an expired
// certificate with words that say so.
func loadCertificate(path string, now time.Time) (*credential, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c credential
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		switch blk.Type {
		case "CERTIFICATE":
			if c.cert == nil {
				if c.cert, err = x509.ParseCertificate(blk.Bytes); err != nil {
					return nil, fmt.Errorf("%s: certificate: %w", path, err)
				}
			}
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: private key: %w", path, err)
			}
			rk, ok := k.(*rsa.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("%s: the private key is not RSA: Entra ID signs client assertions with RSA keys only", path)
			}
			c.key = rk
		case "RSA PRIVATE KEY":
			if c.key, err = x509.ParsePKCS1PrivateKey(blk.Bytes); err != nil {
				return nil, fmt.Errorf("%s: private key: %w", path, err)
			}
		}
	}
	switch {
	case c.cert == nil:
		return nil, fmt.Errorf("%s holds no CERTIFICATE block", path)
	case c.key == nil:
		return nil, fmt.Errorf("%s holds no RSA private key (PRIVATE KEY or RSA PRIVATE KEY block)", path)
	case !c.key.PublicKey.Equal(c.cert.PublicKey):
		return nil, fmt.Errorf("%s: the private key does not belong to the certificate", path)
	case now.After(c.cert.NotAfter):
		return nil, fmt.Errorf("the certificate in %s expired on %s: make a new one and upload it to the app registration", path, c.cert.NotAfter.Format(time.DateOnly))
	}
	return &c, nil
}

// errAssertion wraps a failure to sign.
var errAssertion = errors.New("cannot sign the client assertion")

// assertion is the signed JWT that stands in for a client secret, as Entra ID's
// "certificate credentials" describe it: PS256, the certificate's SHA-256 thumbprint
// in x5t#S256, audience the token endpoint, issuer and subject the client ID, a
// unique jti, valid for ten minutes.
func (c *credential) assertion(clientID, tokenURL string, now time.Time) (string, error) {
	thumb := sha256.Sum256(c.cert.Raw)
	header, _ := json.Marshal(map[string]string{"alg": "PS256", "typ": "JWT", "x5t#S256": base64.RawURLEncoding.EncodeToString(thumb[:])})
	jti := make([]byte, 16)
	rand.Read(jti)
	claims, _ := json.Marshal(map[string]any{
		"aud": tokenURL,
		"iss": clientID,
		"sub": clientID,
		"jti": fmt.Sprintf("%x-%x-%x-%x-%x", jti[0:4], jti[4:6], jti[6:8], jti[8:10], jti[10:]),
		"nbf": now.Unix(),
		"iat": now.Unix(),
		"exp": now.Add(10 * time.Minute).Unix(),
	})
	signing := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(claims)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPSS(rand.Reader, c.key, crypto.SHA256, sum[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	if err != nil {
		return "", fmt.Errorf("%w: %w", errAssertion, err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}
