package identity_test

import (
	"context"
	"fmt"

	"github.com/guardedsql/guard/identity"
)

func ExampleWith() {
	ctx := identity.With(context.Background(), identity.Identity{
		Subject: "copilot-7", Kind: identity.Agent,
		OnBehalfOf: &identity.Identity{Subject: "alice@example.com", Kind: identity.Human},
	})
	id, _ := identity.From(ctx)
	fmt.Println(id)
	fmt.Println(id.Principal().Subject)
	// Output:
	// copilot-7(agent) for alice@example.com(human)
	// alice@example.com
}
