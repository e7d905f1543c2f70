// Command guardctl is the operator tool for guard: policy lint, test and
// explain; audit tail and verify.
package main

import (
	"fmt"
	"io"
	"os"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

const usage = `usage: guardctl <command> [arguments]

commands:
  policy lint FILE                 check a policy file
  policy test FILE                 run a policy file's test cases
  policy explain FILE --as SUBJECT[:kind] [--role R] --sql "..."
  audit verify (--file F | --brokers B --topic T) [--key PUB]
  audit tail (--file F | --brokers B --topic T) [--follow] [filters]
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "policy":
		return runPolicy(args[1:], stdout, stderr)
	case "audit":
		return runAudit(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "guardctl: unknown command %q\n%s", args[0], usage)
	return 2
}
