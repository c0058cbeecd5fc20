package web

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
)

// MinSessionKeyBytes is the shortest session key NewSignIn takes.
const MinSessionKeyBytes = 32

// sealer encrypts and authenticates small values with AES-256-GCM, under a
// key derived from the session key for one purpose (HKDF-SHA256), so the
// cookie's key never opens the stored tokens and the other way round.
type sealer struct{ aead cipher.AEAD }

func newSealer(sessionKey []byte, purpose string) (sealer, error) {
	if len(sessionKey) < MinSessionKeyBytes {
		return sealer{}, fmt.Errorf("the session key has %d bytes, want at least %d (random)", len(sessionKey), MinSessionKeyBytes)
	}
	key, err := hkdf.Key(sha256.New, sessionKey, nil, "stagehand "+purpose, 32)
	if err != nil {
		return sealer{}, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return sealer{}, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return sealer{}, err
	}
	return sealer{aead: aead}, nil
}

// seal returns nonce and ciphertext; ad (not secret, not stored) must be
// given again to open it, so a value sealed for one use (a cookie's name, a
// session's id) does not open for another.
func (s sealer) seal(plain, ad []byte) []byte {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return s.aead.Seal(nonce, nonce, plain, ad)
}

var errUnsealed = errors.New("not sealed with this server's session key, or altered")

func (s sealer) open(sealed, ad []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, errUnsealed
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], ad)
	if err != nil {
		return nil, errUnsealed
	}
	return plain, nil
}

// sealString and openString are seal and open for a cookie's value.
func (s sealer) sealString(plain []byte, ad string) string {
	return base64.RawURLEncoding.EncodeToString(s.seal(plain, []byte(ad)))
}

func (s sealer) openString(value, ad string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil {
		return nil, errUnsealed
	}
	return s.open(b, []byte(ad))
}

// randomString is n random bytes, base64url-encoded.
func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
