package policy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/fsnotify/fsnotify"
)

// Store holds the current policy of a running guard and swaps it atomically
// on Reload. Statements in flight finish on the policy they started with;
// each Decision names the version that decided it.
type Store struct {
	path string
	opts []Option
	cur  atomic.Pointer[Policy]

	mu       sync.Mutex // serializes reloads and guards hooks
	onChange []func(old, new *Policy)
}

// NewStore loads path and returns a Store serving it.
func NewStore(path string, opts ...Option) (*Store, error) {
	p, err := Load(path, opts...)
	if err != nil {
		return nil, err
	}
	s := &Store{path: path, opts: opts}
	s.cur.Store(p)
	return s, nil
}

// StoreOf returns a Store serving p that cannot Reload from a file (used for
// the baseline or a policy built in code); Set replaces its policy.
func StoreOf(p *Policy) *Store {
	s := &Store{}
	s.cur.Store(p)
	return s
}

// ErrNoFile is returned by Reload on a Store that was not loaded from a file.
var ErrNoFile = errors.New("policy: store has no file to reload")

// Policy returns the policy in force.
func (s *Store) Policy() *Policy { return s.cur.Load() }

// Path returns the file the store reloads from ("" for StoreOf).
func (s *Store) Path() string { return s.path }

// Decide delegates to the policy in force. Safe for concurrent use with Reload.
func (s *Store) Decide(ctx context.Context, in *Input) Decision {
	return s.cur.Load().Decide(ctx, in)
}

// OnChange registers f to run after every successful Reload or Set, with the
// previous and the new policy (for audit records such as policy.reloaded).
func (s *Store) OnChange(f func(old, new *Policy)) {
	s.mu.Lock()
	s.onChange = append(s.onChange, f)
	s.mu.Unlock()
}

// Set makes p the policy in force.
func (s *Store) Set(p *Policy) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.swap(p)
}

func (s *Store) swap(p *Policy) {
	old := s.cur.Swap(p)
	for _, f := range s.onChange {
		f(old, p)
	}
}

// Reload reads the store's file again. On any error the policy in force is
// kept and the error returned (errors.Is(err, ErrInvalid) for bad content).
// A file whose content did not change leaves the policy (and OnChange) alone.
func (s *Store) Reload() error {
	if s.path == "" {
		return ErrNoFile
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := Load(s.path, s.opts...)
	if err != nil {
		return err
	}
	// Editors and config management often touch a file several times for
	// one change; the same content is not a new policy.
	if p.Version() == s.cur.Load().Version() {
		return nil
	}
	s.swap(p)
	return nil
}

// Watch reloads the policy whenever its file changes, until ctx is done.
// Reload errors (the old policy stays in force) go to onError, which may be
// nil. It watches the directory so editors that replace the file by rename
// and Kubernetes ConfigMap symlink swaps are seen. Watch returns once the
// watcher is running; it stops in the background when ctx ends.
func (s *Store) Watch(ctx context.Context, onError func(error)) error {
	if s.path == "" {
		return ErrNoFile
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("policy: watch: %w", err)
	}
	dir := filepath.Dir(s.path)
	if err := w.Add(dir); err != nil {
		w.Close()
		return fmt.Errorf("policy: watch %s: %w", dir, err)
	}
	report := func(err error) {
		if onError != nil && err != nil {
			onError(err)
		}
	}
	base := filepath.Base(s.path)
	go func() {
		defer w.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				// ConfigMaps swap a ..data symlink rather than the file, so
				// those events count too. Every relevant event reloads:
				// comparing sizes and modification times misses quick edits
				// (timestamps are coarse), and Reload of unchanged content
				// is a no-op anyway.
				if filepath.Base(ev.Name) != base && !isHidden(ev.Name) {
					continue
				}
				if ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename|fsnotify.Remove) == 0 {
					continue
				}
				if _, err := os.Stat(s.path); err != nil {
					continue // mid-rename; the Create that follows reloads
				}
				report(s.Reload())
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				report(fmt.Errorf("policy: watch: %w", err))
			}
		}
	}()
	return nil
}

func isHidden(name string) bool {
	b := filepath.Base(name)
	return len(b) > 1 && b[0] == '.' && b[1] == '.'
}
