package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// progress draws a one-line bar on a terminal and nothing elsewhere, so
// logs and pipes stay clean.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	label string
	unit  string
	total int64
	start time.Time
	last  time.Time
	done  int64
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// newProgress returns a bar writing to w, or nil (a valid no-op) when w is
// not a terminal. unit "B" formats counts as bytes.
func newProgress(w io.Writer, label, unit string, total int64) *progress {
	if !isTerminal(w) {
		return nil
	}
	now := time.Now()
	return &progress{w: w, label: label, unit: unit, total: total, start: now}
}

// Set records how much is done, redrawing at most ten times a second.
func (p *progress) Set(done int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done = done
	p.maybeDraw()
}

// maybeDraw redraws if the last drawing is old enough. p.mu is held.
func (p *progress) maybeDraw() {
	if now := time.Now(); now.Sub(p.last) >= 100*time.Millisecond {
		p.last = now
		p.draw()
	}
}

// Add records n more done.
func (p *progress) Add(n int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	p.maybeDraw()
}

// Finish draws the final state and ends the line.
func (p *progress) Finish() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.draw()
	fmt.Fprintln(p.w)
}

func (p *progress) draw() {
	const width = 30
	rate := float64(p.done) / max(time.Since(p.start).Seconds(), 1e-3)
	var bar, count string
	if p.total > 0 {
		n := int(min(p.done, p.total) * width / p.total)
		bar = "[" + strings.Repeat("=", n) + strings.Repeat(" ", width-n) + "] " +
			fmt.Sprintf("%3d%% ", min(p.done, p.total)*100/p.total)
		count = p.format(p.done) + "/" + p.format(p.total)
	} else {
		count = p.format(p.done)
	}
	fmt.Fprintf(p.w, "\r%s %s%s %s/s ", p.label, bar, count, p.format(int64(rate)))
}

func (p *progress) format(n int64) string {
	if p.unit != "B" {
		return fmt.Sprintf("%d %s", n, p.unit)
	}
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
