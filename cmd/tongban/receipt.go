package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"tongban/gateway/bundle"
	"tongban/ledger/format"
	"tongban/ledger/gmnote"
	"tongban/ledger/witness"
)

// receiptReport is what receipt verify found; --json prints it.
type receiptReport struct {
	Verdict    string        `json:"verdict"` // INTACT, ALTERED or UNVERIFIABLE
	Problem    string        `json:"problem,omitempty"`
	Seq        int64         `json:"seq"`
	Type       string        `json:"type,omitempty"`
	Packet     string        `json:"packet,omitempty"`
	Actor      *format.Actor `json:"actor,omitempty"`
	Time       *time.Time    `json:"time,omitempty"`
	Checkpoint *struct {
		Origin string `json:"origin"`
		Size   int64  `json:"size"`
		Root   string `json:"root"`
	} `json:"checkpoint,omitempty"`
	Cosignatures int        `json:"cosignatures"`            // by the witnesses given
	NoLaterThan  *time.Time `json:"no_later_than,omitempty"` // when a quorum of them had seen the tree
	Remembered   string     `json:"remembered,omitempty"`    // against the newest checkpoint seen before
	signed       []byte     // the checkpoint, for the memory
	// SM2Key is the SM2 key (name+ID) whose line on the checkpoint was
	// verified, when --sm2-key required one (gm profile, docs/gm.md).
	SM2Key string `json:"sm2_key,omitempty"`
}

func runReceipt(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const usage = "usage: tongban receipt verify FILE --log-key KEY [--sm2-key KEY] [--packet ID] [--witness VKEY]... [--quorum K] [--state FILE] [--server URL] [--json]"
	if len(args) == 0 || args[0] != "verify" {
		return usageError(usage)
	}
	fs := flag.NewFlagSet("receipt verify", flag.ContinueOnError)
	keyArg := fs.String("log-key", "", "the log's verifier key, or a file holding it (GET /v1/ledger/key)")
	packet := fs.String("packet", "", "the packet the entry must belong to")
	var pf policyFlags
	pf.register(fs)
	var cf clientFlags
	cf.register(fs)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	sm2Arg := fs.String("sm2-key", "", "gm profile: the log's SM2 verifier key, or a file holding it; its signature is then required")
	pos, err := parseArgs(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) != 1 || *keyArg == "" {
		return usageError(usage)
	}
	vkey, err := loadVerifierKey(*keyArg)
	if err != nil {
		return usageError("%v", err)
	}
	var sm2Key string
	if *sm2Arg != "" {
		if sm2Key, err = loadSM2VerifierKey(*sm2Arg); err != nil {
			return err
		}
	}
	policy, err := pf.policy()
	if err != nil {
		return err
	}
	text, err := os.ReadFile(pos[0])
	if err != nil {
		return err
	}
	rep := verifyReceipt(text, receiptKeys{log: vkey, sm2: sm2Key, witnesses: policy}, *packet)
	if rep.Verdict == "INTACT" {
		// Held to the newest checkpoint this user has seen of the log,
		// asking the server for a consistency proof only when given --server.
		var prove prover
		if serverGiven(fs) {
			prove = serverProver(&cf)
		}
		if m, err := openMemory(vkey, pf.state); err != nil {
			rep.Remembered = "not remembered: " + err.Error()
		} else {
			var fe *forkError
			rep.Remembered, err = m.check(ctx, rep.signed, nil, prove)
			if errors.As(err, &fe) {
				rep.Verdict, rep.Problem = "ALTERED", fe.Error()
			} else if err != nil {
				rep.Remembered = "not remembered: " + err.Error()
			}
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		printReceipt(stdout, rep)
	}
	switch rep.Verdict {
	case "INTACT":
		return nil
	case "UNVERIFIABLE":
		return exitError{code: 3, msg: fmt.Sprintf("receipt %s cannot be verified with the keys given: %s", pos[0], rep.Problem)}
	}
	return exitError{code: 1, msg: fmt.Sprintf("receipt %s failed verification: %s", pos[0], rep.Problem)}
}

// loadWitnessKey takes a witness verifier key (C2SP cosignature/v1) or a
// file holding one.
func loadWitnessKey(arg string) (string, error) {
	return keyOrFile("--witness", "a witness verifier key", arg, func(k string) error {
		_, err := witness.NewVerifier(k)
		return err
	})
}

// receiptKeys is the trust a receipt is checked with.
type receiptKeys struct {
	log       string          // the log's Ed25519 verifier key
	sm2       string          // gm profile: the log's SM2 verifier key, whose line is then required
	witnesses *witness.Policy // nil: no witnesses required
}

// verifyReceipt checks a receipt offline: the checkpoint's signature under
// the log key (and the SM2 key, and cosignatures by the witnesses), the
// entry's canonical form, that it is the entry at the receipt's index, and
// its inclusion proof.
func verifyReceipt(text []byte, keys receiptKeys, packet string) *receiptReport {
	rep := &receiptReport{Verdict: "UNVERIFIABLE"}
	unverifiable := func(f string, a ...any) *receiptReport {
		rep.Verdict, rep.Problem = "UNVERIFIABLE", fmt.Sprintf(f, a...)
		return rep
	}
	altered := func(f string, a ...any) *receiptReport {
		rep.Verdict, rep.Problem = "ALTERED", fmt.Sprintf(f, a...)
		return rep
	}
	r, err := format.ParseReceipt(text)
	if err != nil {
		return unverifiable("%v", err)
	}
	rep.Seq = r.Index
	if r.Extra == nil {
		return unverifiable("the receipt carries no entry (no extra line): nothing to judge")
	}

	// The checkpoint: signed by the log key given (and its SM2 key, if
	// given), cosigned by enough witnesses.
	cp, isAltered, err := bundle.OpenCheckpoint(r.Checkpoint, keys.log, keys.sm2)
	switch {
	case isAltered:
		return altered("%v", err)
	case err != nil:
		return unverifiable("%v", err)
	}
	if keys.sm2 != "" {
		gv, _ := gmnote.NewVerifier(keys.sm2) // OpenCheckpoint parsed it
		rep.SM2Key = fmt.Sprintf("%s+%08x", gv.Name(), gv.KeyHash())
	}
	rep.Checkpoint = &struct {
		Origin string `json:"origin"`
		Size   int64  `json:"size"`
		Root   string `json:"root"`
	}{cp.Origin, cp.Size, cp.Root.String()}
	rep.signed = r.Checkpoint
	if keys.witnesses != nil {
		res, err := keys.witnesses.Check(r.Checkpoint)
		rep.Cosignatures = len(res.Valid)
		if err != nil {
			return unverifiable("%d of the witnesses given cosigned the checkpoint; the quorum is %d (%v)", rep.Cosignatures, keys.witnesses.Quorum(), err)
		}
		if !res.NoLaterThan.IsZero() {
			rep.NoLaterThan = &res.NoLaterThan
		}
	}

	// The entry: canonical, at the index, included in the checkpoint.
	e, err := format.ParseEntry(r.Extra)
	if err != nil {
		return altered("the entry (extra) is not a canonical entry: %v", err)
	}
	if err := format.CheckPayload(e.Payload); err != nil {
		return altered("the entry's payload: %v", err)
	}
	rep.Type, rep.Packet, rep.Actor, rep.Time = e.Type, e.Packet, &e.Actor, &e.Time
	if e.Seq != r.Index {
		return altered("the entry says seq %d, the receipt index %d", e.Seq, r.Index)
	}
	if r.Index >= cp.Size {
		return altered("index %d is beyond the checkpoint's size %d", r.Index, cp.Size)
	}
	if err := format.CheckInclusion(r.Hashes, cp.Size, cp.Root, r.Index, format.LeafHash(r.Extra)); err != nil {
		return altered("the inclusion proof does not lead from the entry to the checkpoint's root: %v", err)
	}
	if packet != "" && e.Packet != packet {
		return altered("the entry belongs to packet %q, not %q", e.Packet, packet)
	}
	rep.Verdict = "INTACT"
	return rep
}

func printReceipt(w io.Writer, rep *receiptReport) {
	if rep.Checkpoint != nil {
		fmt.Fprintf(w, "checkpoint %s, size %d, root %s (%d witness cosignatures)\n", rep.Checkpoint.Origin, rep.Checkpoint.Size, rep.Checkpoint.Root, rep.Cosignatures)
	}
	if rep.SM2Key != "" {
		fmt.Fprintf(w, "signature  SM2 line by %s verified as well\n", rep.SM2Key)
	}
	if rep.Type != "" {
		fmt.Fprintf(w, "entry      seq %d: %s of packet %s by %s (%s) at %s\n", rep.Seq, rep.Type, rep.Packet,
			rep.Actor.Agency, rep.Actor.Role, rep.Time.UTC().Format(time.RFC3339Nano))
	}
	if rep.NoLaterThan != nil {
		fmt.Fprintf(w, "witnessed  by a quorum of the trusted witnesses: the tree was public NO LATER THAN %s\n", rep.NoLaterThan.UTC().Format(time.RFC3339))
	}
	if rep.Remembered != "" {
		fmt.Fprintf(w, "memory     %s\n", rep.Remembered)
	}
	if rep.Verdict == "INTACT" {
		fmt.Fprintf(w, "INTACT: the log signed a tree of %d entries that holds this entry at seq %d\n", rep.Checkpoint.Size, rep.Seq)
		return
	}
	fmt.Fprintf(w, "%s: %s\n", rep.Verdict, rep.Problem)
}
