// Command install-versitygw builds the VersityGW that the tests run, unless
// it is already built, and prints its path. CI runs it before the tests so
// that the build (a minute or more on a cold cache) is not charged to a
// test's timeout.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"tongban/storage/s3test"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	path, err := s3test.Install(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "install-versitygw:", err)
		os.Exit(1)
	}
	fmt.Println(path)
}
