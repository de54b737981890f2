// promlint: what `promtool check metrics` does, without building all of
// Prometheus: reads the Prometheus text exposition format on stdin, parses it
// with the reference parser (github.com/prometheus/common/expfmt, strict:
// names, labels, escapes, duplicate or misplaced HELP/TYPE lines, types)
// and lints it with promlint (client_golang), the linter promtool runs.
// Exit 0: clean; 1: the input does not parse; 3: lint problems (as promtool).
package main

import (
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

func main() {
	problems, err := promlint.New(os.Stdin).Lint()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error while linting:", err)
		os.Exit(1)
	}
	for _, p := range problems {
		fmt.Fprintln(os.Stderr, p.Metric, p.Text)
	}
	if len(problems) > 0 {
		os.Exit(3)
	}
}
