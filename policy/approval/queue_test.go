package approval_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/guardedsql/guard/identity"
	"github.com/guardedsql/guard/policy/approval"
)

func waitPending(t *testing.T, q *approval.Queue, n int) []approval.Request {
	t.Helper()
	for i := 0; i < 500; i++ {
		if p := q.Pending(); len(p) >= n {
			return p
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("never saw %d pending requests", n)
	return nil
}

func TestQueue_ApproveRejectExpireCancel(t *testing.T) {
	agent := identity.Identity{Subject: "copilot-7", Kind: identity.Agent,
		OnBehalfOf: &identity.Identity{Subject: "alice", Kind: identity.Human}}
	q := approval.NewQueue(approval.WithTimeout(time.Minute))

	results := make(chan approval.Result, 2)
	errs := make(chan error, 2)
	for _, id := range []string{"a", "b"} {
		go func(id string) {
			r, err := q.Approve(context.Background(), approval.Request{ID: id, Identity: agent, Query: "DELETE FROM t WHERE id=1"})
			results <- r
			errs <- err
		}(id)
	}
	waitPending(t, q, 2)
	// Neither the agent nor the human it acts for may approve it.
	require.Error(t, q.Decide("a", true, "alice", ""))
	require.Error(t, q.Decide("a", true, "", ""))
	require.ErrorIs(t, q.Decide("zzz", true, "bob", ""), approval.ErrUnknownRequest)
	require.NoError(t, q.Decide("a", true, "bob", "looks fine"))
	require.NoError(t, q.Decide("b", false, "bob", "no"))
	got := map[bool]approval.Result{}
	for i := 0; i < 2; i++ {
		r := <-results
		require.NoError(t, <-errs)
		got[r.Approved] = r
	}
	require.Equal(t, "bob", got[true].Reviewer)
	require.Equal(t, "no", got[false].Reason)
	require.Empty(t, q.Pending())

	short := approval.NewQueue(approval.WithTimeout(20 * time.Millisecond))
	_, err := short.Approve(context.Background(), approval.Request{ID: "x"})
	require.ErrorIs(t, err, approval.ErrExpired)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = q.Approve(ctx, approval.Request{ID: "y"})
	require.True(t, errors.Is(err, context.Canceled))
	require.Empty(t, q.Pending())
}

func TestQueue_HTTPReviewerAPI(t *testing.T) {
	var mu sync.Mutex
	var notified []string
	q := approval.NewQueue(approval.WithNotify(func(r approval.Request) {
		mu.Lock()
		notified = append(notified, r.ID)
		mu.Unlock()
	}))
	srv := httptest.NewServer(q.Handler())
	defer srv.Close()

	done := make(chan approval.Result, 1)
	go func() {
		r, _ := q.Approve(context.Background(), approval.Request{ID: "req-1", Identity: identity.Identity{Subject: "svc"},
			Query: "UPDATE t SET x=1 WHERE id=2", Rule: "agent-writes", Requested: time.Now()})
		done <- r
	}()
	waitPending(t, q, 1)

	resp, err := http.Get(srv.URL + "/approvals")
	require.NoError(t, err)
	var list []map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&list))
	resp.Body.Close()
	require.Len(t, list, 1)
	require.Equal(t, "req-1", list[0]["id"])
	require.Equal(t, "agent-writes", list[0]["rule"])

	resp, err = http.Post(srv.URL+"/approvals/nope/approve", "application/json", bytes.NewBufferString(`{"reviewer":"bob"}`))
	require.NoError(t, err)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	resp.Body.Close()
	resp, err = http.Post(srv.URL+"/approvals/req-1/approve", "application/json", bytes.NewBufferString(`{bad`))
	require.NoError(t, err)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	resp.Body.Close()
	resp, err = http.Post(srv.URL+"/approvals/req-1/approve", "application/json", bytes.NewBufferString(`{"reviewer":"bob","reason":"ok"}`))
	require.NoError(t, err)
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	resp.Body.Close()
	r := <-done
	require.True(t, r.Approved)
	require.Equal(t, "bob", r.Reviewer)
	mu.Lock()
	require.Equal(t, []string{"req-1"}, notified)
	mu.Unlock()
}
