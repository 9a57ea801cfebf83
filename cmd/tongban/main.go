// Command tongban runs the Tongban gateway and its offline tools.
//
//	tongban serve                      run the gateway (embedded default: ./data, 127.0.0.1:8080)
//	tongban ledger verify --data DIR   check a stopped gateway's ledger
//
// Run "tongban help" for every command.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		var ee exitError
		if errors.As(err, &ee) && ee.code == 0 { // --help: the usage is the output
			fmt.Fprintln(os.Stdout, ee.msg)
			os.Exit(0)
		}
		if !errors.As(err, &ee) || ee.msg != "" {
			fmt.Fprintln(os.Stderr, "tongban:", err)
		}
		os.Exit(exitCode(err))
	}
}
