package mask

// Config is the masking section of a policy file (`masking:`). The policy
// package decodes it from YAML; New turns it into a Masker.
type Config struct {
	// Disabled turns masking off entirely.
	Disabled bool `yaml:"disabled,omitempty" json:"disabled,omitempty"`
}
