package guard_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/lib/pq"
	"github.com/stretchr/testify/require"

	"github.com/guardedsql/guard"
	"github.com/guardedsql/guard/audit"
	"github.com/guardedsql/guard/identity"
	"github.com/guardedsql/guard/policy"
	"github.com/guardedsql/guard/policy/approval"
)

func requireApprovalFor(word string) *countingPolicy {
	p := denyText(word)
	inner := p.f
	p.f = func(in *policy.Input) policy.Decision {
		d := inner(in)
		if d.Effect == policy.Deny {
			d.Effect = policy.RequireApproval
			d.Rule = "review-" + word
		}
		return d
	}
	return p
}

func TestApproval_HeldUntilReviewerDecides(t *testing.T) {
	raw := rawPQ(t)
	table := uniqueName("appr")
	_, err := raw.Exec("CREATE TABLE " + table + " (id int)")
	require.NoError(t, err)
	t.Cleanup(func() { raw.Exec("DROP TABLE IF EXISTS " + table) })

	q := approval.NewQueue(approval.WithTimeout(30 * time.Second))
	mem := audit.NewMemory(0)
	db := openPQ(t, guard.WithPolicy(requireApprovalFor("INSERT")), guard.WithApprover(q), guard.WithAuditor(mem))
	ctx := identity.With(context.Background(), identity.Identity{Subject: "copilot-7", Kind: identity.Agent})

	decide := func(approve bool) {
		for len(q.Pending()) == 0 {
			time.Sleep(2 * time.Millisecond)
		}
		require.NoError(t, q.Decide(q.Pending()[0].ID, approve, "bob", "reason"))
	}
	go decide(false)
	_, err = db.ExecContext(ctx, "INSERT INTO "+table+" VALUES (1)")
	require.ErrorIs(t, err, guard.ErrDenied)
	var de *guard.DeniedError
	require.ErrorAs(t, err, &de)
	require.Equal(t, "bob", de.Reviewer)
	require.NotEmpty(t, de.ApprovalID)

	go decide(true)
	_, err = db.ExecContext(ctx, "INSERT INTO "+table+" VALUES (2)")
	require.NoError(t, err)

	var ids []int
	rows, err := raw.Query("SELECT id FROM " + table)
	require.NoError(t, err)
	for rows.Next() {
		var id int
		require.NoError(t, rows.Scan(&id))
		ids = append(ids, id)
	}
	require.Equal(t, []int{2}, ids, "only the approved insert reached the database")

	recs := statementRecords(mem, "INSERT INTO "+table)
	require.Len(t, recs, 2)
	require.Equal(t, "denied", recs[0].Outcome.Status)
	require.Equal(t, "bob", recs[1].Decision.Reviewer)
	require.NotEmpty(t, recs[1].Decision.ApprovalID)

	// A cancelled context while waiting denies, too.
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	_, err = db.ExecContext(cctx, "INSERT INTO "+table+" VALUES (3)")
	require.ErrorIs(t, err, guard.ErrDenied)
	require.True(t, errors.Is(err, context.DeadlineExceeded))

	// Without an approver, a statement that needs approval is denied.
	db2 := openPQ(t, guard.WithPolicy(requireApprovalFor("INSERT")))
	_, err = db2.ExecContext(ctx, "INSERT INTO "+table+" VALUES (4)")
	require.ErrorIs(t, err, guard.ErrDenied)
	require.Contains(t, err.Error(), "no approver")
}

func TestObserveOnly_RecordsButDoesNotBlock(t *testing.T) {
	mem := audit.NewMemory(0)
	db := openPQ(t, guard.WithPolicy(denyText("GENERATE_SERIES")), guard.WithObserveOnly(true), guard.WithAuditor(mem))
	var n int
	require.NoError(t, db.QueryRow("SELECT count(*) FROM generate_series(1,3)").Scan(&n))
	require.Equal(t, 3, n)
	recs := statementRecords(mem, "generate_series(1,3)")
	require.Len(t, recs, 1)
	require.Equal(t, "deny", recs[0].Decision.Effect)
	require.True(t, recs[0].Decision.Observed)
	require.Equal(t, "ok", recs[0].Outcome.Status)
}

func TestDropIn_BadSettingIsAnErrorAtFirstUse(t *testing.T) {
	db, err := sql.Open("guarded-postgres", pgDSN(t)+"&guard.mode=loud")
	if err == nil {
		err = db.Ping()
		db.Close()
	}
	require.ErrorIs(t, err, guard.ErrConfig)
	require.Contains(t, err.Error(), "guard.mode")

	t.Setenv("GUARD_MODE", "sometimes")
	c, err := pq.NewConnector(pgDSN(t))
	require.NoError(t, err)
	db = sql.OpenDB(guard.NewConnector(c))
	err = db.Ping()
	db.Close()
	require.ErrorIs(t, err, guard.ErrConfig)
	require.Contains(t, err.Error(), "GUARD_MODE")
}

func TestDropIn_SettingsFromDSNAreStrippedAndApplied(t *testing.T) {
	db, err := sql.Open("guarded-postgres", pgDSN(t)+"&guard.mode=observe&guard.database=shop")
	require.NoError(t, err)
	defer db.Close()
	var one int
	require.NoError(t, db.QueryRow("SELECT 1").Scan(&one), "lib/pq must not see guard.* parameters")
	require.Equal(t, 1, one)
}

func TestDriverErrorsStayReachable(t *testing.T) {
	db := openPQ(t)
	_, err := db.Exec("SELECT * FROM no_such_table_here")
	var pqErr *pq.Error
	require.ErrorAs(t, err, &pqErr)
	require.Equal(t, "42P01", string(pqErr.Code))
	require.NotErrorIs(t, err, guard.ErrDenied)
}
