package audit

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigFromMap(t *testing.T) {
	pub, priv := testKey(t)
	keyFile := filepath.Join(t.TempDir(), "audit.key")
	os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(priv.Seed())+"\n"), 0o600)
	pwFile := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pwFile, []byte("s3cret\n"), 0o600)

	c, err := ConfigFromMap(map[string]string{
		"audit.brokers":            "k1:9092, k2:9092",
		"audit.topic":              "guard.audit",
		"audit.spool_dir":          "/var/lib/guard/audit",
		"audit.spool_max_bytes":    "64MiB",
		"audit.fail_mode":          "closed",
		"audit.file":               "/var/log/guard.jsonl",
		"audit.signing_key":        keyFile,
		"audit.checkpoint_every":   "500",
		"audit.sasl_mechanism":     "scram-sha-512",
		"audit.sasl_user":          "guard",
		"audit.sasl_password_file": pwFile,
		"audit.tls":                "true",
		"other.setting":            "ignored",
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Kafka.Brokers, ",") != "k1:9092,k2:9092" || c.Kafka.Topic != "guard.audit" ||
		c.SpoolDir != "/var/lib/guard/audit" || c.SpoolMaxBytes != 64<<20 || c.FailMode != FailClosed ||
		c.File != "/var/log/guard.jsonl" || c.CheckpointEvery != 500 || c.Kafka.SASL == nil || c.Kafka.TLS == nil {
		t.Fatalf("config %+v", c)
	}
	if !c.SigningKey.Public().(ed25519.PublicKey).Equal(pub) {
		t.Fatal("signing key from file differs")
	}

	c, err = ConfigFromMap(map[string]string{"audit.signing_key": hex.EncodeToString(priv.Seed()), "audit.checkpoint_every": "2s"})
	if err != nil || !c.SigningKey.Equal(priv) || c.CheckpointInterval != 2*time.Second {
		t.Fatalf("inline hex seed and duration: %v %+v", err, c)
	}

	for key, val := range map[string]string{
		"audit.spool_max_bytes":  "lots",
		"audit.fail_mode":        "open",
		"audit.signing_key":      "not a key",
		"audit.checkpoint_every": "-3",
		"audit.brokers":          "nohostport",
		"audit.tls":              "maybe",
		"audit.sasl_mechanism":   "kerberos",
		"audit.spool_dirr":       "/x",
	} {
		m := map[string]string{key: val}
		if key == "audit.sasl_mechanism" {
			m["audit.sasl_user"], m["audit.sasl_password_file"] = "u", pwFile
		}
		_, err := ConfigFromMap(m)
		var se *SettingError
		if !errors.As(err, &se) || se.Key != key || !strings.Contains(err.Error(), key) {
			t.Errorf("%s=%q: got %v, want a SettingError naming the key", key, val, err)
		}
	}
	if _, err := ConfigFromMap(map[string]string{"audit.brokers": "k:1"}); err == nil || !strings.Contains(err.Error(), "audit.topic") {
		t.Errorf("brokers without topic: %v", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	if _, err := New(Config{Sinks: []Sink{&collectSink{}}}); err == nil {
		t.Error("no spool dir accepted")
	}
	if _, err := New(Config{SpoolDir: t.TempDir()}); err == nil {
		t.Error("no sink accepted")
	}
	if _, err := New(Config{SpoolDir: t.TempDir(), Sinks: []Sink{&collectSink{}}, FailMode: "sometimes"}); err == nil {
		t.Error("unknown fail mode accepted")
	}
}
