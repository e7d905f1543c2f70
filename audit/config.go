package audit

import (
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// SettingError names a drop-in setting that could not be used.
type SettingError struct {
	Key   string
	Value string
	Err   error
}

func (e *SettingError) Error() string {
	return fmt.Sprintf("audit: setting %s=%q: %v", e.Key, e.Value, e.Err)
}

func (e *SettingError) Unwrap() error { return e.Err }

// Settings keys understood by ConfigFromMap.
const (
	SettingBrokers            = "audit.brokers"             // comma-separated host:port list
	SettingTopic              = "audit.topic"               // Kafka topic
	SettingSpoolDir           = "audit.spool_dir"           // spool directory
	SettingSpoolMaxBytes      = "audit.spool_max_bytes"     // e.g. 268435456, 256MiB, 1GB
	SettingFailMode           = "audit.fail_mode"           // block | closed
	SettingFile               = "audit.file"                // JSON-lines file sink
	SettingSigningKey         = "audit.signing_key"         // key file path or base64/hex Ed25519 seed
	SettingCheckpointEvery    = "audit.checkpoint_every"    // records (e.g. 1000) or a duration (e.g. 10s)
	SettingCheckpointInterval = "audit.checkpoint_interval" // duration
	SettingSource             = "audit.source"              // CloudEvents source
	SettingTLS                = "audit.tls"                 // true to use TLS with system roots
	SettingTLSCA              = "audit.tls_ca"              // PEM file of CA certificates (implies TLS)
	SettingTLSCert            = "audit.tls_cert"            // client certificate PEM file
	SettingTLSKey             = "audit.tls_key"             // client key PEM file
	SettingTLSServerName      = "audit.tls_server_name"     // expected server name
	SettingSASLMechanism      = "audit.sasl_mechanism"      // plain | scram-sha-256 | scram-sha-512
	SettingSASLUser           = "audit.sasl_user"           // SASL user name
	SettingSASLPasswordFile   = "audit.sasl_password_file"  // file holding the SASL password
)

// ConfigFromMap builds a Config from drop-in settings (keys are the
// Setting* constants; keys outside the "audit." prefix are ignored).
// Errors are *SettingError naming the bad key.
func ConfigFromMap(m map[string]string) (Config, error) {
	var c Config
	bad := func(k string, err error) (Config, error) {
		return Config{}, &SettingError{Key: k, Value: m[k], Err: err}
	}
	known := map[string]bool{}
	for _, k := range []string{SettingBrokers, SettingTopic, SettingSpoolDir, SettingSpoolMaxBytes,
		SettingFailMode, SettingFile, SettingSigningKey, SettingCheckpointEvery, SettingCheckpointInterval,
		SettingSource, SettingTLS, SettingTLSCA, SettingTLSCert, SettingTLSKey, SettingTLSServerName,
		SettingSASLMechanism, SettingSASLUser, SettingSASLPasswordFile} {
		known[k] = true
	}
	for k := range m {
		if strings.HasPrefix(k, "audit.") && !known[k] {
			return bad(k, errors.New("unknown setting"))
		}
	}
	get := func(k string) string { return strings.TrimSpace(m[k]) }

	if v := get(SettingBrokers); v != "" {
		for _, b := range strings.Split(v, ",") {
			b = strings.TrimSpace(b)
			if b == "" {
				continue
			}
			if !strings.Contains(b, ":") {
				return bad(SettingBrokers, fmt.Errorf("broker %q needs host:port", b))
			}
			c.Kafka.Brokers = append(c.Kafka.Brokers, b)
		}
	}
	c.Kafka.Topic = get(SettingTopic)
	if len(c.Kafka.Brokers) > 0 && c.Kafka.Topic == "" {
		return bad(SettingTopic, errors.New("required when audit.brokers is set"))
	}
	if c.Kafka.Topic != "" && len(c.Kafka.Brokers) == 0 {
		return bad(SettingBrokers, errors.New("required when audit.topic is set"))
	}
	c.Kafka.Source = get(SettingSource)
	c.SpoolDir = get(SettingSpoolDir)
	if v := get(SettingSpoolMaxBytes); v != "" {
		n, err := parseBytes(v)
		if err != nil {
			return bad(SettingSpoolMaxBytes, err)
		}
		c.SpoolMaxBytes = n
	}
	switch v := FailMode(strings.ToLower(get(SettingFailMode))); v {
	case "", FailBlock, FailClosed:
		c.FailMode = v
	default:
		return bad(SettingFailMode, errors.New("want block or closed"))
	}
	c.File = get(SettingFile)
	if v := get(SettingSigningKey); v != "" {
		k, err := ParsePrivateKey(v)
		if err != nil {
			return bad(SettingSigningKey, err)
		}
		c.SigningKey = k
	}
	if v := get(SettingCheckpointEvery); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			c.CheckpointEvery = n
		} else if d, derr := time.ParseDuration(v); derr == nil && d > 0 {
			c.CheckpointInterval = d
		} else {
			return bad(SettingCheckpointEvery, errors.New("want a positive record count or a duration such as 10s"))
		}
	}
	if v := get(SettingCheckpointInterval); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return bad(SettingCheckpointInterval, errors.New("want a positive duration such as 10s"))
		}
		c.CheckpointInterval = d
	}

	useTLS := false
	if v := get(SettingTLS); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return bad(SettingTLS, err)
		}
		useTLS = b
	}
	var tc tls.Config
	if v := get(SettingTLSCA); v != "" {
		pem, err := os.ReadFile(v)
		if err != nil {
			return bad(SettingTLSCA, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return bad(SettingTLSCA, errors.New("no PEM certificates in file"))
		}
		tc.RootCAs, useTLS = pool, true
	}
	if cert, key := get(SettingTLSCert), get(SettingTLSKey); cert != "" || key != "" {
		if cert == "" || key == "" {
			return bad(SettingTLSCert, errors.New("audit.tls_cert and audit.tls_key go together"))
		}
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return bad(SettingTLSCert, err)
		}
		tc.Certificates, useTLS = []tls.Certificate{pair}, true
	}
	if v := get(SettingTLSServerName); v != "" {
		tc.ServerName, useTLS = v, true
	}
	if useTLS {
		tc.MinVersion = tls.VersionTLS12
		c.Kafka.TLS = &tc
	}
	if v := strings.ToLower(get(SettingSASLMechanism)); v != "" {
		user := get(SettingSASLUser)
		if user == "" {
			return bad(SettingSASLUser, errors.New("required with audit.sasl_mechanism"))
		}
		pf := get(SettingSASLPasswordFile)
		if pf == "" {
			return bad(SettingSASLPasswordFile, errors.New("required with audit.sasl_mechanism"))
		}
		pw, err := os.ReadFile(pf)
		if err != nil {
			return bad(SettingSASLPasswordFile, err)
		}
		pass := strings.TrimRight(string(pw), "\r\n")
		var mech sasl.Mechanism
		switch v {
		case "plain":
			mech = plain.Mechanism{Username: user, Password: pass}
		case "scram-sha-256":
			mech, err = scram.Mechanism(scram.SHA256, user, pass)
		case "scram-sha-512":
			mech, err = scram.Mechanism(scram.SHA512, user, pass)
		default:
			return bad(SettingSASLMechanism, errors.New("want plain, scram-sha-256 or scram-sha-512"))
		}
		if err != nil {
			return bad(SettingSASLMechanism, err)
		}
		c.Kafka.SASL = mech
	}
	return c, nil
}

func parseBytes(v string) (int64, error) {
	s := strings.ToUpper(strings.TrimSpace(v))
	mult := int64(1)
	for _, u := range []struct {
		suf string
		m   int64
	}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"B", 1}} {
		if strings.HasSuffix(s, u.suf) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suf)), u.m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, errors.New("want a positive size such as 268435456, 256MiB or 1GB")
	}
	return n * mult, nil
}

// ParsePrivateKey reads an Ed25519 signing key from a file path or from
// the text itself: a 32-byte seed or 64-byte private key in base64 or hex,
// as the whole file or inline.
func ParsePrivateKey(s string) (ed25519.PrivateKey, error) {
	text := strings.TrimSpace(s)
	if b, err := os.ReadFile(text); err == nil {
		text = strings.TrimSpace(string(b))
	}
	raw, err := decodeKey(text)
	if err != nil {
		return nil, errors.New("not a key file or a base64/hex Ed25519 seed")
	}
	switch len(raw) {
	case ed25519.SeedSize:
		return ed25519.NewKeyFromSeed(raw), nil
	case ed25519.PrivateKeySize:
		return ed25519.PrivateKey(raw), nil
	}
	return nil, fmt.Errorf("key is %d bytes; want a 32-byte seed or 64-byte private key", len(raw))
}

// ParsePublicKey reads an Ed25519 public key (32 bytes, base64 or hex)
// from a file path or the text itself. A private key or seed is accepted
// too and its public half used.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	text := strings.TrimSpace(s)
	if b, err := os.ReadFile(text); err == nil {
		text = strings.TrimSpace(string(b))
	}
	raw, err := decodeKey(text)
	if err != nil {
		return nil, errors.New("not a key file or a base64/hex Ed25519 key")
	}
	switch len(raw) {
	case ed25519.PublicKeySize:
		return ed25519.PublicKey(raw), nil
	case ed25519.PrivateKeySize:
		return ed25519.PrivateKey(raw).Public().(ed25519.PublicKey), nil
	}
	return nil, fmt.Errorf("key is %d bytes; want a 32-byte public key", len(raw))
}

func decodeKey(s string) ([]byte, error) {
	if b, err := hex.DecodeString(s); err == nil {
		return b, nil
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
