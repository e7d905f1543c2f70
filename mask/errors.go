package mask

import (
	"errors"
	"fmt"
)

// ErrInvalidConfig is matched (errors.Is) by every error New returns for a
// configuration it cannot use.
var ErrInvalidConfig = errors.New("mask: invalid configuration")

// ErrNoHashKey is returned (wrapped in a *ConfigError) when the hash
// strategy is used but no key is configured.
var ErrNoHashKey = errors.New("hash strategy needs a key (WithHashKey or hash_key_env)")

// ErrUnknownStrategy is returned (wrapped in a *ConfigError) for a strategy
// name that is neither built in nor registered with WithStrategy.
var ErrUnknownStrategy = errors.New("unknown strategy")

// ConfigError names the part of the masking configuration that is wrong.
type ConfigError struct {
	// Where is "rule <name>", "exemption <name>", "kinds.<kind>" or a field name.
	Where string
	Err   error
}

func (e *ConfigError) Error() string { return fmt.Sprintf("mask: %s: %v", e.Where, e.Err) }

// Unwrap returns the underlying error.
func (e *ConfigError) Unwrap() error { return e.Err }

// Is makes every ConfigError match ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }
