package audit

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/guardedsql/guard/internal/kafkatest"
)

const (
	crashChildEnv  = "GUARD_AUDIT_CRASH_CHILD"
	crashSpoolEnv  = "GUARD_AUDIT_CRASH_SPOOL"
	crashBrokerEnv = "GUARD_AUDIT_CRASH_BROKER"
)

// TestMain lets the test binary act as the child of TestSIGKILLMidStream.
func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) == "1" {
		os.Exit(crashChild())
	}
	os.Exit(m.Run())
}

// crashChild emits records forever, printing each id once Emit returned,
// until the parent kills it.
func crashChild() int {
	l, err := New(Config{
		SpoolDir: os.Getenv(crashSpoolEnv),
		Kafka:    KafkaConfig{Brokers: []string{os.Getenv(crashBrokerEnv)}, Topic: topic, WriteTimeout: time.Second},
		RetryMax: 100 * time.Millisecond,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	w := bufio.NewWriter(os.Stdout)
	ctx := context.Background()
	for i := 0; ; i++ {
		rec := statement(i)
		if err := l.Emit(ctx, rec); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 4
		}
		fmt.Fprintf(w, "%s %s\n", rec.ID, rec.Chain.Hash)
		if i%50 == 0 {
			w.Flush()
		}
	}
}

// TestSIGKILLMidStream kills a process with SIGKILL while it emits and
// ships, with part of its spool undelivered because the broker went away;
// a new process on the same spool directory delivers everything the killed
// one had emitted.
func TestSIGKILLMidStream(t *testing.T) {
	b := kafkatest.Start(t, topic, 1)
	spoolDir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"=1", crashSpoolEnv+"="+spoolDir, crashBrokerEnv+"="+b.Addr())
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	emitted := map[string]string{}
	sc := bufio.NewScanner(out)
	stopped := false
	for sc.Scan() {
		id, hash, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			t.Fatalf("child wrote %q", sc.Text())
		}
		emitted[id] = hash
		if len(emitted) == 2000 && !stopped {
			// Leave a backlog the dead process cannot have shipped.
			b.Stop()
			stopped = true
		}
		if len(emitted) == 4000 {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if len(emitted) < 4000 {
		t.Fatalf("child stopped after %d records: %v", len(emitted), sc.Err())
	}
	b.Restart()

	l, err := New(Config{SpoolDir: spoolDir, Kafka: KafkaConfig{Brokers: []string{b.Addr()}, Topic: topic}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got := kafkaRecords(t, b, topic)
	requireAll(t, emitted, got)
	rep := requireVerified(t, got, nil)
	var replayed bool
	for _, r := range got {
		if r.Kind == KindStart && r.Chain.ID == l.ChainID() && strings.Contains(r.Detail, "replays") {
			replayed = true
		}
	}
	if !replayed {
		t.Fatal("the restarted logger did not report replaying a backlog")
	}
	t.Logf("child emitted %d records before SIGKILL; topic holds %d records in %d chains", len(emitted), len(got), len(rep.Chains))
}
