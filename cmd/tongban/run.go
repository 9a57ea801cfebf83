package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// command is one subcommand: its usage line and what it does.
type command struct {
	usage string
	run   func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() map[string]command {
	return map[string]command{
		"ledger":  {"ledger verify --data DIR [--log-key KEY] [--witness VKEY]...    check a stopped gateway's ledger offline", runLedger},
		"serve":   {"serve [--addr A] [--data DIR] [--config FILE]    run the gateway", runServe},
		"receipt": {"receipt verify FILE --log-key KEY [--sm2-key KEY] [--packet ID] [--witness VKEY]... [--quorum K] [--json]    check a write's receipt offline", runReceipt},
		"verify":  {"verify BUNDLE.zip --log-key KEY [--sm2-key KEY] [--witness VKEY]... [--quorum K] [--json]    check a downloaded bundle offline", runVerify},
		"submit":  {"submit --server URL [--manifest FILE | --item ...] KIND=FILE...    upload a packet", runSubmit},
		"fetch":   {"fetch ID -o FILE [--material KIND] [--verify --log-key KEY]    download a bundle or a material", runFetch},
		"keygen":  {"keygen [--sm2] [--origin O] [--out FILE]    make a checkpoint signing key (--sm2: the gm profile's SM2 key)", runKeygen},
		"rebuild": {"rebuild --data DIR    drop a stopped gateway's packet views and rebuild them from the ledger", runRebuild},
		"gc":      {"gc --data DIR [--grace 24h] [--dry-run]    delete stored objects no ledger entry names", runGC},
		"health":  {"health [--server URL]    exit 0 when the gateway is ready (for container health checks)", runHealth},
		"devgen":  {"", runDevgen}, // hidden: generated packets, for measurements
		"token":   {"token new --agency ID --role ROLE    mint a bearer token and its credential line", runToken},

		"mirror":  {"mirror --server URL --log-key KEY --dir DIR [--witness VKEY]... [--follow] | mirror verify --dir DIR --log-key KEY    keep a verified copy of the ledger", runMirror},
		"witness": {"witness serve --addr A --data DIR --log VKEY... | witness key --data DIR    cosign a log's checkpoints (C2SP tlog-witness)", runWitness},

		"inbox":      {"inbox [--outbox] [--status S] [--json]    list the packets sent to (or by) your agency, soonest deadline first", runInbox},
		"show":       {"show ID [--json]    one packet: materials, deadline, history", runShow},
		"act":        {"act ID receive|return|approve|reject|deliver [--reason R]    move a packet on", runAct},
		"supplement": {"supplement ID KIND=FILE...    hand in corrected materials after a return (补正)", runSupplement},
		"licence":    {"licence ID FILE    upload the licence issued for an approved packet", runLicence},
		"version":    {"version    the build's module version and source revision", runVersion},
		"packets":    {"packets [--status S] [--item I] [--origin A] [--destination A] [--from D] [--to D] [--overdue] [--all] [--csv [--out FILE]]    search packets (auditors: all of them)", runPackets},
	}
}

// run dispatches args[0] to its subcommand.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmds := commands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout, cmds)
		if len(args) == 0 {
			return exitError{code: 2}
		}
		return nil
	}
	c, ok := cmds[args[0]]
	if !ok {
		usage(stderr, cmds)
		return usageError("unknown command %q", args[0])
	}
	return c.run(ctx, args[1:], stdout, stderr)
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "usage: tongban COMMAND [flags] [args]")
	fmt.Fprintln(w)
	names := make([]string, 0, len(cmds))
	for n, c := range cmds {
		if c.usage != "" {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintln(w, "  tongban "+cmds[n].usage)
	}
}

// exitError carries a process exit code; msg is printed unless empty.
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return e.msg }

func usageError(format string, a ...any) error {
	return exitError{code: 2, msg: fmt.Sprintf(format, a...)}
}

func exitCode(err error) int {
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

// parseArgs parses flags that may come before or after positional
// arguments ("verify b.zip --log-key K" and "verify --log-key K b.zip").
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, exitError{code: 0, msg: flagUsage(fs)}
			}
			return nil, usageError("%v\n%s", err, flagUsage(fs))
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// verbHelp is each client verb's synopsis, arguments and an example, shown
// by --help before the flags.
var verbHelp = map[string]string{
	"submit": `usage: tongban submit [--manifest FILE | --item CODE --destination AGENCY --applicant-type T --applicant-name N --applicant-id ID] KIND=FILE...

Each KIND=FILE gives one material: KIND is the material's kind in the
catalogue (GET /v1/catalog), FILE a local file. The files are checked
against the catalogue first (required kinds, sizes, types by content);
nothing is uploaded while any problem remains, and every problem is listed.

example:
  tongban submit --item ENT-SETUP --destination qingpu-amr \
    --applicant-type enterprise --applicant-name 上海青嘉贸易有限公司 --applicant-id 91310118MA1G00011T \
    consent_form=同意书.pdf application_form=申请书.pdf applicant_id=营业执照.jpg \
    address_proof=租赁合同.pdf articles=章程.ofd appointments=任职文件.pdf`,
	"inbox": `usage: tongban inbox [--outbox] [--status STATUS] [--json]

Lists the packets sent to your agency (--outbox: sent by it), soonest
deadline first; OVERDUE marks those past their deadline. Times are local.

example:
  tongban inbox --status submitted`,
	"show": `usage: tongban show ID [--json]

Shows one packet: status, applicant, deadline, materials with their
digests and the history of ledger entries. Times are local.

example:
  tongban show pk-01jd3f5k6m7n8p9q`,
	"act": `usage: tongban act ID ACTION [--reason REASON]

ACTION is receive, return (补正, needs --reason), approve, reject (needs
--reason) or deliver.

example:
  tongban act pk-01jd3f5k6m7n8p9q return --reason "住所证明缺少产权人签章"`,
	"supplement": `usage: tongban supplement ID KIND=FILE...

After a return for correction (补正), hands in the corrected materials.
Each KIND=FILE replaces the material of that kind; FILE is a local file.

example:
  tongban supplement pk-01jd3f5k6m7n8p9q address_proof=租赁合同-盖章.pdf`,
	"licence": `usage: tongban licence ID FILE

Uploads the licence issued for an approved packet (PDF, OFD, JPEG or PNG).

example:
  tongban licence pk-01jd3f5k6m7n8p9q 营业执照.ofd`,
	"packets": `usage: tongban packets [--box BOX] [--status STATUS] [--item CODE] [--origin AGENCY] [--destination AGENCY]
                       [--from DATE] [--to DATE] [--overdue[=false]] [--limit N] [--cursor C] [--all] [--json | --csv [--out FILE]]

Searches packets: auditors all of them, other agencies their inbox or
outbox (--box). The filters combine. DATE is 2006-01-02 (a day in
Beijing time) or an RFC 3339 time; --from is inclusive, --to exclusive.
Prints one page (--limit packets, the cursor of the next page on stderr)
or, with --all, every page; times are local, OVERDUE marks packets past
their deadline. --csv writes the server's CSV export of every match
(UTF-8, times at +08:00) to stdout or, complete or not at all, to --out.

example:
  tongban packets --destination qingpu-amr --status approved --from 2026-03-01 --to 2026-04-01 --all
  tongban packets --item ENT-SETUP --overdue --csv --out overdue.csv`,
	"version": `usage: tongban version

Prints the module version, the Go version and the source revision the
binary was built from.`,
}

func flagUsage(fs *flag.FlagSet) string {
	var b strings.Builder
	if h, ok := verbHelp[fs.Name()]; ok {
		b.WriteString(h + "\n\nflags:\n")
	} else {
		fmt.Fprintf(&b, "usage of %s:\n", fs.Name())
	}
	fs.SetOutput(&b)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	return strings.TrimRight(b.String(), "\n")
}
