package policy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func generation(n int) []byte {
	return fmt.Appendf(nil, "name: gen\nrules:\n  - name: tag\n    match: stmt.effect == 'read'\n    effect: audit\n    message: gen-%d\n", n)
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	// Write then rename, as editors and config management do, so a reader
	// never sees half a file.
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, data, 0o600))
	require.NoError(t, os.Rename(tmp, path))
}

// TestReloadUnderLoad reloads the policy 100 times while 16 goroutines
// decide: every decision names one version, and its message is the one that
// version's file says, so no decision mixes two policies.
func TestReloadUnderLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	writeFile(t, path, generation(0))
	s, err := NewStore(path)
	require.NoError(t, err)

	var mu sync.Mutex
	versions := map[string]string{s.Policy().Version(): "gen-0"}
	var changes atomic.Int32
	s.OnChange(func(old, new *Policy) {
		assert.NotEqual(t, old.Version(), new.Version())
		changes.Add(1)
	})

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var decided atomic.Int64
	type seen struct{ version, message string }
	results := make([][]seen, 16)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := &Input{Identity: svc, Analysis: facts(sel)}
			for ctx.Err() == nil {
				d := s.Decide(ctx, in)
				results[g] = append(results[g], seen{d.Policy, d.Message})
				decided.Add(1)
			}
		}()
	}
	for n := 1; n <= 100; n++ {
		data := generation(n)
		writeFile(t, path, data)
		require.NoError(t, s.Reload())
		mu.Lock()
		versions[s.Policy().Version()] = fmt.Sprintf("gen-%d", n)
		mu.Unlock()
		if n%10 == 0 {
			// An invalid file is refused and the current policy stays.
			writeFile(t, path, []byte("name: gen\nrules:\n  - name: tag\n    match: stmt.effct == 'read'\n    effect: audit\n"))
			err := s.Reload()
			require.ErrorIs(t, err, ErrInvalid)
			assert.Contains(t, err.Error(), "policy.yaml:4:")
			writeFile(t, path, data)
		}
	}
	require.NoError(t, s.Reload()) // unchanged content: no new version, no OnChange
	for decided.Load() < 1000 {    // make sure the readers really ran alongside
		time.Sleep(time.Millisecond)
	}
	cancel()
	wg.Wait()
	assert.EqualValues(t, 100, changes.Load())
	assert.Len(t, versions, 101)
	used := map[string]bool{}
	for _, rs := range results {
		for _, r := range rs {
			want, ok := versions[r.version]
			require.True(t, ok, "decision by unknown version %q", r.version)
			require.Equal(t, want, r.message, "decision mixes versions")
			used[r.version] = true
		}
	}
	t.Logf("%d decisions over %d policy versions", decided.Load(), len(used))
	assert.Equal(t, "gen-100", s.Decide(ctx, &Input{Identity: svc, Analysis: facts(sel)}).Message)
}

func TestWatch(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.yaml")
	writeFile(t, path, generation(1))
	s, err := NewStore(path)
	require.NoError(t, err)
	changed := make(chan string, 10)
	s.OnChange(func(_, p *Policy) { changed <- p.Version() })
	errs := make(chan error, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	require.NoError(t, s.Watch(ctx, func(err error) { errs <- err }))

	writeFile(t, path, generation(2))
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("the watcher did not pick up the new file")
	}
	assert.Equal(t, "gen-2", s.Decide(ctx, &Input{Identity: svc, Analysis: facts(sel)}).Message)

	// A broken edit is reported and the running policy stays.
	writeFile(t, path, []byte("name: gen\nrulez: []\n"))
	select {
	case err := <-errs:
		assert.ErrorIs(t, err, ErrInvalid)
		assert.Contains(t, err.Error(), "policy.yaml:2:")
	case <-time.After(10 * time.Second):
		t.Fatal("the watcher did not report the broken file")
	}
	assert.Equal(t, "gen-2", s.Decide(ctx, &Input{Identity: svc, Analysis: facts(sel)}).Message)
}

func TestStoreOf(t *testing.T) {
	s := StoreOf(Baseline())
	assert.ErrorIs(t, s.Reload(), ErrNoFile)
	var d Decider = s
	assert.Equal(t, Deny, d.Decide(context.Background(), &Input{Identity: svc, Analysis: facts(drop)}).Effect)
	p, err := Parse(generation(7))
	require.NoError(t, err)
	var got *Policy
	s.OnChange(func(_, n *Policy) { got = n })
	s.Set(p)
	assert.Same(t, p, got)
	assert.Equal(t, "gen-7", s.Decide(context.Background(), &Input{Identity: svc, Analysis: facts(sel)}).Message)
}
