package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"tongban/api"
	"tongban/gateway"
	"tongban/ledger"
)

// runKeygen writes a new checkpoint signer key and prints its verifier key.
func runKeygen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	origin := fs.String("origin", ledger.DefaultOrigin, "the log's origin, which names the key")
	out := fs.String("out", "signer.key", "where to write the signer key (mode 0600; never overwritten)")
	if pos, err := parseArgs(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usageError("keygen takes no arguments")
	}
	skey, vkey, err := ledger.GenerateKey(*origin)
	if err != nil {
		return err
	}
	if err := ledger.WriteKeyFile(*out, skey); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "signer key:   %s (keep it secret; place it at <data>/ledger/signer.key)\nverifier key: %s\n", *out, vkey)
	return nil
}

// runToken mints a bearer token and prints the credential line for the config.
func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "new" {
		return usageError("usage: tongban token new --agency ID --role submitter|reviewer|auditor")
	}
	fs := flag.NewFlagSet("token new", flag.ContinueOnError)
	agency := fs.String("agency", "", "agency id")
	role := fs.String("role", "", "submitter, reviewer or auditor")
	if pos, err := parseArgs(fs, args[1:]); err != nil {
		return err
	} else if len(pos) > 0 {
		return usageError("token new takes no arguments")
	}
	switch *role {
	case gateway.RoleSubmitter, gateway.RoleReviewer, gateway.RoleAuditor:
	default:
		return usageError("--role must be submitter, reviewer or auditor")
	}
	if *agency == "" {
		return usageError("--agency is required")
	}
	tok, sum := api.NewToken()
	line, _ := json.Marshal(api.Credential{Agency: *agency, Role: *role, TokenSHA256: sum})
	fmt.Fprintf(stdout, "token:      %s\ncredential: %s\n", tok, line)
	fmt.Fprintln(stderr, "Give the token to the agency; put the credential line in the config file's \"credentials\".")
	return nil
}
