package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestREADMEWalkthrough runs the README's walkthrough block, as written,
// against a fresh demo gateway, so the documented commands cannot rot.
func TestREADMEWalkthrough(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(readme), "<!-- walkthrough:start -->\n```sh\n")
	block, _, ok2 := strings.Cut(block, "```\n<!-- walkthrough:end -->")
	if !ok || !ok2 {
		t.Fatal("README has no walkthrough block")
	}
	data := filepath.Join(t.TempDir(), "data")
	gw := serve(t, data)
	cmd := exec.Command("bash", "-eu", "-c", block)
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "SERVER="+gw.url, "DATA="+data, "TB="+tongbanBin(t))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("walkthrough failed: %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []string{
		`"code":"ENT-SETUP"`, "submitted pk-", "INTACT: packet", "received\ncorrection_requested\nsubmitted\nreceived\napproved\nlicense_issued\ndelivered\n",
		`"type":"packet.delivered"`, `"ok":true`, "status submitted, ledger seq",
		"packet.received of packet pk-", "INTACT: the log signed a tree of",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("walkthrough output lacks %q:\n%s", want, text)
		}
	}
}
