package identity_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/guardedsql/guard/identity"
)

func TestWithFrom(t *testing.T) {
	_, ok := identity.From(context.Background())
	require.False(t, ok)
	require.True(t, identity.FromOrAnonymous(context.Background()).IsAnonymous())
	//nolint:staticcheck // a nil context must not panic
	_, ok = identity.From(nil)
	require.False(t, ok)

	human := identity.Identity{Subject: "alice@example.com", Kind: identity.Human, Roles: []string{"support"}}
	agent := identity.Identity{Subject: "copilot-7", Kind: identity.Agent, OnBehalfOf: &human, Session: "s-1"}
	ctx := identity.With(context.Background(), agent)
	got, ok := identity.From(ctx)
	require.True(t, ok)
	require.Equal(t, "copilot-7", got.Subject)
	require.Equal(t, "alice@example.com", got.Principal().Subject)
	require.Equal(t, "copilot-7(agent) for alice@example.com(human)", got.String())
	require.True(t, got.OnBehalfOf.HasRole("support"))
	require.False(t, got.HasRole("support"))
	require.Len(t, got.Chain(), 2)
	require.True(t, identity.Agent.Valid())
	require.False(t, identity.Kind("robot").Valid())
}

func TestChainCutsCycles(t *testing.T) {
	a := &identity.Identity{Subject: "a"}
	b := &identity.Identity{Subject: "b", OnBehalfOf: a}
	a.OnBehalfOf = b
	require.LessOrEqual(t, len(a.Chain()), 3)
	require.NotEmpty(t, a.String())
}
