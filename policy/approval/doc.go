// Package approval holds statements that a policy sends for human review
// (effect require_approval) until a reviewer decides.
//
// An Approver is handed to the guard with guard.WithApprover. Queue is the
// in-process one: the statement's goroutine waits while a reviewer answers
// through Decide or the small HTTP API of Handler.
//
//	q := approval.NewQueue(approval.WithTimeout(2*time.Minute),
//		approval.WithNotify(func(r approval.Request) { notifyReviewers(r) }))
//	go http.ListenAndServe("127.0.0.1:8081", q.Handler())
//	db := sql.OpenDB(guard.NewConnector(c, guard.WithApprover(q)))
//
// A statement whose approval is rejected, expires, or whose context ends
// returns a *guard.DeniedError and never reaches the database.
package approval
