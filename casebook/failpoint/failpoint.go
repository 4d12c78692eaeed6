// Package failpoint lets the crash tests kill a casebook process at a named step of
// the write path, to show that a kill at any instant loses nothing and leaves nothing
// behind that a retry or a sweep does not put right (DESIGN rule 14).
//
// A process arms one step with the environment variable CASEBOOK_TEST_FAILPOINT:
// "blob.synced" kills it the first time it reaches that step, "blob.synced:2" the
// second time. The kill is SIGKILL, as a crash or the OOM killer would end it: no
// deferred function runs. Unarmed, Reached costs one comparison.
package failpoint

import (
	"os"
	"strconv"
	"strings"
	"sync/atomic"
)

// Variable is the environment variable that arms a step.
const Variable = "CASEBOOK_TEST_FAILPOINT"

var (
	armed, nth = parse(os.Getenv(Variable))
	hits       atomic.Int64
)

func parse(v string) (string, int64) {
	step, n, ok := strings.Cut(v, ":")
	if !ok {
		return step, 1
	}
	k, err := strconv.ParseInt(n, 10, 64)
	if err != nil || k < 1 {
		return "", 0
	}
	return step, k
}

// Reached kills the process when step is the armed one and this is the time it was
// armed for.
func Reached(step string) {
	if armed == "" || step != armed || hits.Add(1) != nth {
		return
	}
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		p.Kill()
	}
	select {} // the signal is on its way
}
