package pki

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"

	"golang.org/x/crypto/scrypt"
)

// The CA key lives in the replicated Raft state, so every master's disk
// and every snapshot holds a copy; it is stored encrypted under a
// passphrase only the operator and the masters' configuration know.
//
// Blob layout, version 1:
//
//	magic "berthkey" | version 0x01 | salt (16) | nonce (12) | AES-256-GCM ciphertext+tag
//
// Version 1 fixes the KDF to scrypt N=1<<15, r=8, p=1 (the parameters
// scrypt's authors recommend for interactive use: a tenth of a second or
// so, and 32 MiB), so a blob cannot talk LoadCA into a cheaper or a
// ruinously expensive derivation. A later version byte can raise them. The header is the
// GCM's additional data: changing any byte of it fails authentication
// just as a changed ciphertext does.

// ErrDecrypt means the encrypted key could not be opened: the passphrase
// is wrong or the blob was altered. GCM cannot tell the two apart.
var ErrDecrypt = errors.New("pki: cannot decrypt CA key: wrong passphrase or corrupted data")

const (
	keyMagic   = "berthkey"
	keyVersion = 1
	saltLen    = 16
	nonceLen   = 12
	headerLen  = len(keyMagic) + 1 + saltLen + nonceLen

	scryptN   = 1 << 15
	scryptR   = 8
	scryptP   = 1
	aesKeyLen = 32
)

func encryptKey(plain, passphrase []byte) ([]byte, error) {
	if len(passphrase) == 0 {
		return nil, errors.New("pki: empty passphrase")
	}
	header := make([]byte, headerLen)
	copy(header, keyMagic)
	header[len(keyMagic)] = keyVersion
	rand.Read(header[len(keyMagic)+1:]) // salt and nonce; never fails
	salt, nonce := splitHeader(header)
	aead, err := newAEAD(passphrase, salt)
	if err != nil {
		return nil, err
	}
	return aead.Seal(header, nonce, plain, header), nil
}

func decryptKey(blob, passphrase []byte) ([]byte, error) {
	if len(blob) < headerLen || !bytes.HasPrefix(blob, []byte(keyMagic)) {
		return nil, errors.New("pki: not an encrypted berth CA key")
	}
	if v := blob[len(keyMagic)]; v != keyVersion {
		return nil, fmt.Errorf("pki: encrypted CA key has version %d; this build reads version %d", v, keyVersion)
	}
	header := blob[:headerLen]
	salt, nonce := splitHeader(header)
	aead, err := newAEAD(passphrase, salt)
	if err != nil {
		return nil, err
	}
	plain, err := aead.Open(nil, nonce, blob[headerLen:], header)
	if err != nil {
		return nil, ErrDecrypt
	}
	return plain, nil
}

func splitHeader(header []byte) (salt, nonce []byte) {
	rest := header[len(keyMagic)+1:]
	return rest[:saltLen], rest[saltLen : saltLen+nonceLen]
}

func newAEAD(passphrase, salt []byte) (cipher.AEAD, error) {
	key, err := scrypt.Key(passphrase, salt, scryptN, scryptR, scryptP, aesKeyLen)
	if err != nil {
		return nil, fmt.Errorf("pki: scrypt: %w", err)
	}
	defer clear(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("pki: aes: %w", err)
	}
	return cipher.NewGCM(block)
}
