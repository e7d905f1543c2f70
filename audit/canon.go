package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// The canonical encoding of a record is its encoding/json form with
// Chain.Hash empty. encoding/json is deterministic for Record (fixed field
// order, sorted map keys, RFC 3339 UTC times), and decoding then re-encoding
// gives the same bytes, so a verifier can recompute the hash from a record
// read back from Kafka or a file without having kept the original bytes.
//
// Emit marshals the body with a zero Chain outside the chain lock, strips
// this suffix, and appends the chain fields under the lock: only the hash
// and the short chain suffix are serialized between goroutines.
var zeroChainSuffix = []byte(`"chain":{"id":"","seq":0,"prev_hash":"","hash":""}}`)

var replacementEscape = []byte(`\ufffd`)

// errNotCanonical means a record's JSON did not end with the chain object,
// which only happens if Record gains a field after Chain.
var errNotCanonical = errors.New("audit: record encoding does not end with the chain object")

// marshalBody encodes rec with a zero Chain and returns the bytes before the
// chain object.
func marshalBody(rec *Record) ([]byte, error) {
	return appendMarshalBody(nil, rec)
}

// appendMarshalBody appends what marshalBody returns to dst.
func appendMarshalBody(dst []byte, rec *Record) ([]byte, error) {
	if b, ok := appendBody(dst, rec); ok {
		return b, nil
	}
	b, err := marshalBodyJSON(rec)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

// marshalBodyJSON is marshalBody by encoding/json: the definition of the
// canonical form, used for records the hand encoder leaves to it.
func marshalBodyJSON(rec *Record) ([]byte, error) {
	saved := rec.Chain
	rec.Chain = Chain{}
	b, err := json.Marshal(rec)
	rec.Chain = saved
	if err != nil {
		return nil, err
	}
	if bytes.Contains(b, replacementEscape) {
		// Invalid UTF-8 was written as the escape \ufffd, but a decoder
		// reads it back as U+FFFD, which encodes as raw bytes: encode the
		// decoded form so a verifier's re-encoding matches.
		var again Record
		if err := json.Unmarshal(b, &again); err != nil {
			return nil, err
		}
		if b, err = json.Marshal(&again); err != nil {
			return nil, err
		}
	}
	if !bytes.HasSuffix(b, zeroChainSuffix) {
		return nil, errNotCanonical
	}
	return b[:len(b)-len(zeroChainSuffix)], nil
}

// appendChain appends the chain object to body. hash may be empty (the
// canonical form that is hashed).
func appendChain(dst []byte, chainID string, seq uint64, prev, hash string) []byte {
	dst = append(dst, `"chain":{"id":"`...)
	dst = append(dst, chainID...)
	dst = append(dst, `","seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"prev_hash":"`...)
	dst = append(dst, prev...)
	dst = append(dst, `","hash":"`...)
	dst = append(dst, hash...)
	dst = append(dst, `"}}`...)
	return dst
}

// seal appends the chain fields to body and returns the full JSON with its
// hash set, and the hash. scratch is reused for the canonical form.
func seal(body []byte, chainID string, seq uint64, prev string) (out []byte, hash string) {
	canon := make([]byte, 0, len(body)+len(chainID)+len(prev)+160)
	canon = append(canon, body...)
	canon = appendChain(canon, chainID, seq, prev, "")
	sum := sha256.Sum256(canon)
	hash = hex.EncodeToString(sum[:])
	// The sealed form differs only by the hash inside the final `""}}`.
	out = make([]byte, 0, len(canon)+len(hash))
	out = append(out, canon[:len(canon)-3]...)
	out = append(out, hash...)
	out = append(out, `"}}`...)
	return out, hash
}

// appendSealedFrame appends a spool frame holding body sealed into the
// chain (the JSON with its chain object and hash), and returns the hash.
func appendSealedFrame(dst []byte, chainID, id, kind string, body []byte, seq uint64, prev string) ([]byte, string) {
	start := len(dst)
	dst = appendFrameHeader(dst, chainID, id, kind)
	js := len(dst)
	dst = append(dst, body...)
	dst = appendChain(dst, chainID, seq, prev, "")
	sum := sha256.Sum256(dst[js:])
	var hx [2 * sha256.Size]byte
	hex.Encode(hx[:], sum[:])
	// The sealed form differs only by the hash inside the final `""}}`.
	dst = append(dst[:len(dst)-3], hx[:]...)
	dst = append(dst, `"}}`...)
	finishFrame(dst, start)
	return dst, string(hx[:])
}

// Hash recomputes the hash of rec from its canonical encoding (every field
// as it is now, with Chain.Hash left out). Verify compares it to
// rec.Chain.Hash.
func Hash(rec *Record) (string, error) {
	body, err := marshalBody(rec)
	if err != nil {
		return "", err
	}
	canon := appendChain(body, rec.Chain.ID, rec.Chain.Sequence, rec.Chain.PrevHash, "")
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:]), nil
}

// CheckpointMessage is the byte string a checkpoint signs: a domain
// separator, the chain id, the covered sequence number and its hash.
func CheckpointMessage(chainID string, seq uint64, hash string) []byte {
	return fmt.Appendf(nil, "guard-audit-checkpoint/v1\n%s\n%d\n%s\n", chainID, seq, hash)
}

// KeyID returns the short identifier of an Ed25519 public key recorded in
// checkpoints: hex of the first 8 bytes of its SHA-256.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}
