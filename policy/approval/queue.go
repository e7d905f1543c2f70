package approval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// ErrExpired is returned by Queue.Approve when nobody decided in time.
var ErrExpired = errors.New("approval: request expired")

// ErrUnknownRequest is returned by Queue.Decide for an id that is not pending.
var ErrUnknownRequest = errors.New("approval: no such pending request")

// Func adapts a function to the Approver interface.
type Func func(ctx context.Context, req Request) (Result, error)

// Approve calls f.
func (f Func) Approve(ctx context.Context, req Request) (Result, error) { return f(ctx, req) }

// Queue is an in-process Approver: statements wait in it until a reviewer
// decides through Decide or the HTTP API of Handler, the request expires,
// or the statement's context is done.
type Queue struct {
	timeout  time.Duration
	onNotify func(Request)

	mu      sync.Mutex
	pending map[string]*waiting
}

type waiting struct {
	req  Request
	done chan Result
}

// QueueOption configures a Queue.
type QueueOption func(*Queue)

// WithTimeout sets how long a request waits for a reviewer (default 5 minutes).
func WithTimeout(d time.Duration) QueueOption { return func(q *Queue) { q.timeout = d } }

// WithNotify calls f, on its own goroutine, for every new request: the place
// to page a reviewer (chat message, e-mail, ticket).
func WithNotify(f func(Request)) QueueOption { return func(q *Queue) { q.onNotify = f } }

// NewQueue returns an empty Queue.
func NewQueue(opts ...QueueOption) *Queue {
	q := &Queue{timeout: 5 * time.Minute, pending: map[string]*waiting{}}
	for _, o := range opts {
		o(q)
	}
	return q
}

// Approve holds req until it is decided, expires, or ctx is done.
func (q *Queue) Approve(ctx context.Context, req Request) (Result, error) {
	if req.ID == "" {
		return Result{}, errors.New("approval: request without an id")
	}
	w := &waiting{req: req, done: make(chan Result, 1)}
	q.mu.Lock()
	if _, dup := q.pending[req.ID]; dup {
		q.mu.Unlock()
		return Result{}, fmt.Errorf("approval: request %s is already pending", req.ID)
	}
	q.pending[req.ID] = w
	q.mu.Unlock()
	defer func() {
		q.mu.Lock()
		delete(q.pending, req.ID)
		q.mu.Unlock()
	}()
	if q.onNotify != nil {
		go q.onNotify(req)
	}
	timer := time.NewTimer(q.timeout)
	defer timer.Stop()
	select {
	case r := <-w.done:
		return r, nil
	case <-timer.C:
		return Result{}, ErrExpired
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

// Pending returns the requests waiting for a reviewer, oldest first.
func (q *Queue) Pending() []Request {
	q.mu.Lock()
	out := make([]Request, 0, len(q.pending))
	for _, w := range q.pending {
		out = append(out, w.req)
	}
	q.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Requested.Before(out[j].Requested) })
	return out
}

// Decide answers the pending request id. A reviewer may not approve a
// request they made themselves.
func (q *Queue) Decide(id string, approved bool, reviewer, reason string) error {
	if strings.TrimSpace(reviewer) == "" {
		return errors.New("approval: a decision needs a reviewer")
	}
	q.mu.Lock()
	w, ok := q.pending[id]
	if ok {
		for _, p := range w.req.Identity.Chain() {
			if approved && p.Subject == reviewer {
				q.mu.Unlock()
				return fmt.Errorf("approval: %s cannot approve their own request", reviewer)
			}
		}
		delete(q.pending, id)
	}
	q.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownRequest, id)
	}
	w.done <- Result{Approved: approved, Reviewer: reviewer, Reason: reason}
	return nil
}

// pendingView is the JSON shape of a pending request.
type pendingView struct {
	ID        string    `json:"id"`
	Subject   string    `json:"subject"`
	Chain     string    `json:"identity"`
	Query     string    `json:"query"`
	Rule      string    `json:"rule"`
	Message   string    `json:"message"`
	Requested time.Time `json:"requested"`
}

// Handler serves the reviewer API:
//
//	GET  /approvals                 pending requests as JSON
//	POST /approvals/{id}/approve    body {"reviewer": "...", "reason": "..."}
//	POST /approvals/{id}/reject     same body
//
// Authenticate reviewers in front of it; the reviewer name is taken from
// the body as given.
func (q *Queue) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /approvals", func(w http.ResponseWriter, _ *http.Request) {
		var out []pendingView
		for _, r := range q.Pending() {
			out = append(out, pendingView{ID: r.ID, Subject: r.Identity.Subject, Chain: r.Identity.String(),
				Query: r.Query, Rule: r.Rule, Message: r.Message, Requested: r.Requested})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})
	decide := func(approved bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var body struct {
				Reviewer string `json:"reviewer"`
				Reason   string `json:"reason"`
			}
			if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&body); err != nil {
				http.Error(w, "bad body: "+err.Error(), http.StatusBadRequest)
				return
			}
			err := q.Decide(r.PathValue("id"), approved, body.Reviewer, body.Reason)
			switch {
			case errors.Is(err, ErrUnknownRequest):
				http.Error(w, err.Error(), http.StatusNotFound)
			case err != nil:
				http.Error(w, err.Error(), http.StatusBadRequest)
			default:
				w.WriteHeader(http.StatusNoContent)
			}
		}
	}
	mux.HandleFunc("POST /approvals/{id}/approve", decide(true))
	mux.HandleFunc("POST /approvals/{id}/reject", decide(false))
	return mux
}
