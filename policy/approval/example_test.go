package approval_test

import (
	"context"
	"fmt"
	"time"

	"github.com/guardedsql/guard/identity"
	"github.com/guardedsql/guard/policy/approval"
)

func ExampleQueue() {
	q := approval.NewQueue(approval.WithTimeout(time.Minute))
	go func() {
		// A reviewer, e.g. through q.Handler(), answers the pending request.
		for len(q.Pending()) == 0 {
			time.Sleep(time.Millisecond)
		}
		_ = q.Decide(q.Pending()[0].ID, true, "bob@example.com", "ticket OPS-12")
	}()
	res, err := q.Approve(context.Background(), approval.Request{
		ID: "r1", Identity: identity.Identity{Subject: "copilot-7", Kind: identity.Agent},
		Query: "UPDATE orders SET status = 'refunded' WHERE id = 42",
	})
	fmt.Println(res.Approved, res.Reviewer, err)
	// Output: true bob@example.com <nil>
}
