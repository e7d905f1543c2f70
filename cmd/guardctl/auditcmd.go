package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"iter"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/guardedsql/guard/audit"
)

const auditUsage = `usage:
  guardctl audit verify (--file F | --brokers B --topic T) [--key PUB] [--json] [--set audit.K=V ...]
  guardctl audit tail   (--file F | --brokers B --topic T) [--follow] [--identity S] [--effect E] [--table T] [--json] [--set audit.K=V ...]

verify exits 0 when every chain checks out, 1 when it finds a problem, 2 on bad usage or I/O errors.
--key is an Ed25519 public key (file, base64 or hex); without it checkpoint signatures are not checked.
--set passes drop-in settings for the broker connection (audit.tls, audit.tls_ca, audit.sasl_mechanism, ...).
`

// runAudit implements guardctl audit verify and audit tail.
func runAudit(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, auditUsage)
		return 2
	}
	switch args[0] {
	case "verify":
		return auditVerify(args[1:], stdout, stderr)
	case "tail":
		return auditTail(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, auditUsage)
		return 0
	}
	fmt.Fprintf(stderr, "guardctl audit: unknown command %q\n%s", args[0], auditUsage)
	return 2
}

// auditContext is the context audit commands run under: cancelled by an
// interrupt (tests replace it).
var auditContext = func() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt)
}

type settingsFlag map[string]string

func (s settingsFlag) String() string { return "" }
func (s settingsFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok {
		return errors.New("want audit.KEY=VALUE")
	}
	s[k] = val
	return nil
}

type sourceFlags struct {
	file, brokers, topic string
	settings             settingsFlag
}

func (s *sourceFlags) register(fs *flag.FlagSet) {
	s.settings = settingsFlag{}
	fs.StringVar(&s.file, "file", "", "JSON-lines audit file")
	fs.StringVar(&s.brokers, "brokers", "", "comma-separated Kafka brokers")
	fs.StringVar(&s.topic, "topic", "", "Kafka topic")
	fs.Var(s.settings, "set", "drop-in setting audit.KEY=VALUE for the broker connection (repeatable)")
}

// open returns the records of the chosen source and a cleanup function.
func (s *sourceFlags) open(ctx context.Context, follow bool) (iter.Seq2[*audit.Record, error], func(), error) {
	switch {
	case s.file != "" && (s.brokers != "" || s.topic != ""):
		return nil, nil, errors.New("give --file or --brokers/--topic, not both")
	case s.file != "":
		f, err := os.Open(s.file)
		if err != nil {
			return nil, nil, err
		}
		if follow {
			return audit.ReadRecords(&followReader{ctx: ctx, f: f}), func() { f.Close() }, nil
		}
		return audit.ReadRecords(f), func() { f.Close() }, nil
	case s.brokers != "" || s.topic != "":
		m := map[string]string{}
		for k, v := range s.settings {
			m[k] = v
		}
		m[audit.SettingBrokers], m[audit.SettingTopic] = s.brokers, s.topic
		cfg, err := audit.ConfigFromMap(m)
		if err != nil {
			return nil, nil, err
		}
		return audit.KafkaRecords(ctx, cfg.Kafka, follow), func() {}, nil
	}
	return nil, nil, errors.New("give --file F or --brokers B --topic T")
}

// followReader reads a growing file like tail -f: at the end it waits for
// more until ctx is done.
type followReader struct {
	ctx context.Context
	f   *os.File
}

func (r *followReader) Read(p []byte) (int, error) {
	for {
		n, err := r.f.Read(p)
		if n > 0 || (err != nil && err != io.EOF) {
			return n, err
		}
		select {
		case <-r.ctx.Done():
			return 0, io.EOF
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func auditVerify(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("guardctl audit verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var src sourceFlags
	src.register(fs)
	key := fs.String("key", "", "Ed25519 public key (file, base64 or hex) that signs checkpoints")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var pub ed25519.PublicKey
	if *key != "" {
		k, err := audit.ParsePublicKey(*key)
		if err != nil {
			fmt.Fprintf(stderr, "guardctl audit verify: --key: %v\n", err)
			return 2
		}
		pub = k
	}
	ctx, stop := auditContext()
	defer stop()
	recs, done, err := src.open(ctx, false)
	if err != nil {
		fmt.Fprintf(stderr, "guardctl audit verify: %v\n", err)
		return 2
	}
	defer done()
	rep, err := audit.Verify(recs, pub)
	if err != nil {
		fmt.Fprintf(stderr, "guardctl audit verify: %v\n", err)
		return 2
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		printReport(stdout, &rep)
	}
	if !rep.OK() {
		return 1
	}
	return 0
}

func printReport(w io.Writer, rep *audit.Report) {
	fmt.Fprintf(w, "%d records, %d identical duplicates, %d chains\n", rep.Records, rep.Duplicates, len(rep.Chains))
	for _, c := range rep.Chains {
		state := "open"
		if c.Stopped {
			state = "stopped"
		}
		signed := "signatures not checked (no --key)"
		if rep.KeyChecked {
			signed = fmt.Sprintf("%d valid checkpoints, signed through #%d", c.Checkpoints, c.SignedThrough)
		}
		fmt.Fprintf(w, "  chain %s: #%d-#%d, %d records, %s, %s\n", c.ID, c.First, c.Last, c.Records, state, signed)
	}
	if rep.KeyChecked && rep.Unsigned() > 0 {
		fmt.Fprintf(w, "%d records after the last checkpoint of their chain are hash-linked but not yet signed\n", rep.Unsigned())
	}
	if rep.OK() {
		fmt.Fprintln(w, "OK: no record modified, missing, reordered or forged")
		return
	}
	fmt.Fprintf(w, "FAILED: %d problems\n", len(rep.Problems))
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "  %s\n", p)
	}
}

func auditTail(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("guardctl audit tail", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var src sourceFlags
	src.register(fs)
	follow := fs.Bool("follow", false, "keep waiting for new records")
	var f audit.Filter
	fs.StringVar(&f.Identity, "identity", "", "only records of this subject (acting or acted for)")
	fs.StringVar(&f.Effect, "effect", "", "only this decision or statement effect (allow, deny, read, write, ...)")
	fs.StringVar(&f.Table, "table", "", "only statements touching this table")
	asJSON := fs.Bool("json", false, "print matching records as JSON lines")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, stop := auditContext()
	defer stop()
	recs, done, err := src.open(ctx, *follow)
	if err != nil {
		fmt.Fprintf(stderr, "guardctl audit tail: %v\n", err)
		return 2
	}
	defer done()
	for rec, err := range recs {
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			fmt.Fprintf(stderr, "guardctl audit tail: %v\n", err)
			var ue *audit.UnreadableError
			if !errors.As(err, &ue) {
				return 2
			}
			continue
		}
		if !f.Match(rec) {
			continue
		}
		if *asJSON {
			b, _ := json.Marshal(rec)
			fmt.Fprintf(stdout, "%s\n", b)
		} else {
			fmt.Fprintln(stdout, audit.FormatLine(rec))
		}
	}
	return 0
}
