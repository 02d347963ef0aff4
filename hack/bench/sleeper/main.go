// Command sleeper sleeps, then optionally writes the current time to a file, and exits 0. The
// benchmark in hack/bench runs it as a container process under both runtime handlers: with a
// long -for it keeps a container running, and with -clock-file it records the moment just
// before it exits. It is built static, so a runc container can run it from a bind mount.
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"
)

func main() {
	duration := flag.Duration("for", time.Second, "how long to sleep before exiting")
	clockFile := flag.String("clock-file", "", "file to write the current Unix time in nanoseconds to, just before exiting")
	flag.Parse()

	time.Sleep(*duration)
	if *clockFile == "" {
		return
	}
	now := strconv.FormatInt(time.Now().UnixNano(), 10)
	if err := os.WriteFile(*clockFile, []byte(now+"\n"), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "sleeper: %v\n", err)
		os.Exit(1)
	}
}
