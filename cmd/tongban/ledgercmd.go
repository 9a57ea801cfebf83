package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"tongban/ledger"
	"tongban/ledger/format"
	"tongban/ledger/witness"
)

// ledgerDir is where the gateway keeps its ledger inside --data.
func ledgerDir(data string) string { return filepath.Join(data, "ledger") }

func runLedger(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		return usageError(ledgerUsage)
	}
	fs := flag.NewFlagSet("ledger verify", flag.ContinueOnError)
	data := fs.String("data", "data", "the gateway's data directory")
	keyArg := fs.String("log-key", "", "the log's verifier key, or a file holding it, obtained out of band (default: trust the key in the directory)")
	var pf policyFlags
	pf.register(fs)
	pos, err := parseArgs(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("ledger verify takes no arguments, got %q", pos)
	}
	var vkey string
	if *keyArg != "" {
		if vkey, err = loadVerifierKey(*keyArg); err != nil {
			return err
		}
	}
	policy, err := pf.policy()
	if err != nil {
		return err
	}
	dir := ledgerDir(*data)
	l, err := ledger.Open(ledger.Options{Dir: dir, ReadOnly: true})
	if errors.Is(err, ledger.ErrLocked) {
		return fmt.Errorf("%w: stop the gateway first, or ask it with POST /v1/ledger/verify", err)
	}
	if err != nil {
		return err
	}
	defer l.Close()

	fmt.Fprintf(stdout, "ledger   %s\norigin   %s\nkey      %s\n", dir, l.Origin(), l.VerifierKey())
	if vkey != "" && vkey != l.VerifierKey() {
		return exitError{code: 3, msg: fmt.Sprintf("UNVERIFIABLE: the ledger in %s is signed with %s, not the key given %s", dir, l.VerifierKey(), vkey)}
	}
	if vkey == "" {
		vkey = l.VerifierKey()
	}
	bar := newProgress(stderr, "verifying", "entries", l.Size())
	rep, err := l.Verify(ctx, func(done, _ int64) { bar.Set(done) })
	bar.Finish()
	var ve *ledger.VerifyError
	if errors.As(err, &ve) {
		fmt.Fprintf(stdout, "result   FAILED at seq %d: %s\n", ve.Seq, ve.Reason)
		return exitError{code: 1, msg: fmt.Sprintf("ledger verification failed: first bad seq %d", ve.Seq)}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "size     %d\nroot     %s\nsigned   %d checkpoints checked\n", rep.Size, rep.Root, rep.Checkpoints)
	if policy == nil {
		trust := "the key given"
		if *keyArg == "" {
			trust = "the key in the directory itself (give --log-key)"
		}
		fmt.Fprintf(stdout, "trust    %s; NOT checked against witnesses (give --witness)\nresult   OK\n", trust)
		return nil
	}
	if err := checkWitnessed(*data, vkey, policy, l, stdout); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "result   OK\n")
	return nil
}

const ledgerUsage = "usage: tongban ledger verify --data DIR [--log-key KEY] [--witness VKEY]... [--quorum K]"

// checkWitnessed holds the ledger to the newest checkpoint in the data
// directory's cosign.json that the trusted witnesses cosigned: the trust
// comes from outside the directory (the log key and the witnesses' keys),
// so a rewritten ledger with a re-signed tree does not pass.
func checkWitnessed(data, vkey string, policy *witness.Policy, l *ledger.Ledger, stdout io.Writer) error {
	b, err := os.ReadFile(filepath.Join(data, "cosign.json"))
	if err != nil {
		return exitError{code: 3, msg: fmt.Sprintf("UNVERIFIABLE: no cosigned checkpoint to check against: %v", err)}
	}
	var st struct {
		Quorum string `json:"quorum_checkpoint"`
		Latest string `json:"latest_checkpoint"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return exitError{code: 3, msg: fmt.Sprintf("UNVERIFIABLE: cosign.json: %v", err)}
	}
	var best format.Checkpoint
	var res witness.Result
	var why []string
	for _, s := range []string{st.Quorum, st.Latest} {
		if s == "" {
			continue
		}
		cp, err := format.OpenCheckpoint([]byte(s), vkey)
		if err != nil {
			why = append(why, err.Error())
			continue
		}
		r, err := policy.Check([]byte(s))
		if err != nil {
			why = append(why, fmt.Sprintf("size %d: %v", cp.Size, err))
			continue
		}
		if cp.Size >= best.Size {
			best, res = cp, r
		}
	}
	if best.Origin == "" {
		return exitError{code: 3, msg: fmt.Sprintf("UNVERIFIABLE: cosign.json holds no checkpoint signed by the log key and cosigned by a quorum of the witnesses given (%s)", strings.Join(why, "; "))}
	}
	if best.Size > l.Size() {
		return exitError{code: 1, msg: fmt.Sprintf("ALTERED: the witnesses cosigned tree size %d (root %s), the ledger holds only %d entries", best.Size, best.Root, l.Size())}
	}
	root, err := l.TreeHash(best.Size)
	if err != nil {
		return err
	}
	if root != best.Root {
		return exitError{code: 1, msg: fmt.Sprintf("ALTERED: the witnesses cosigned tree size %d with root %s, the ledger's tree of that size has root %s: its history was rewritten", best.Size, best.Root, root)}
	}
	fmt.Fprintf(stdout, "witnessed %d of the trusted witnesses cosigned size %d (quorum %d), no later than %s; the ledger extends it\n",
		len(res.Valid), best.Size, policy.Quorum(), res.NoLaterThan.Format(time.RFC3339))
	return nil
}
