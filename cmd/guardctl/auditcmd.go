package main

import (
	"fmt"
	"io"
)

// runAudit is replaced by the audit work.
func runAudit(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "guardctl audit: not built yet")
	return 2
}
