package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"

	"tongban/api"
	"tongban/gateway"
	"tongban/ledger"
	"tongban/ledger/gmnote"
)

// runKeygen writes a new checkpoint signer key and prints its verifier key.
func runKeygen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	origin := fs.String("origin", ledger.DefaultOrigin, "the log's origin, which names the key")
	out := fs.String("out", "", "where to write the signer key (mode 0600; never overwritten; default signer.key, or sm2.key with --sm2)")
	sm2 := fs.Bool("sm2", false, "make the gm profile's SM2 key (PKCS#8 PEM) instead of the Ed25519 one")
	if pos, err := parseArgs(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usageError("keygen takes no arguments")
	}
	if *sm2 { // gm profile
		if *out == "" {
			*out = "sm2.key"
		}
		priv, pemKey, err := gmnote.GenerateKey()
		if err != nil {
			return err
		}
		s, err := gmnote.NewSigner(*origin, priv)
		if err != nil {
			return err
		}
		if err := ledger.WriteKeyFile(*out, strings.TrimSpace(string(pemKey))); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "SM2 signer key:   %s (keep it secret; place it at <data>/ledger/sm2.key)\nSM2 verifier key: %s\n", *out, s.VerifierKey())
		return nil
	}
	if *out == "" {
		*out = "signer.key"
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
