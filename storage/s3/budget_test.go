package s3

import (
	"context"
	"errors"
	"runtime"
	"testing"
)

// granted reports whether grow's result arrived, without waiting for it.
func granted(ch chan error) bool {
	select {
	case err := <-ch:
		return err == nil
	default:
		return false
	}
}

func growAsync(l *lease, n int64) chan error {
	ch := make(chan error, 1)
	go func() { ch <- l.grow(context.Background(), n) }()
	return ch
}

// waitQueued waits until n requests are queued on b.
func waitQueued(b *budget, n int) {
	for {
		b.mu.Lock()
		q := len(b.queue)
		b.mu.Unlock()
		if q >= n {
			return
		}
		runtime.Gosched()
	}
}

func TestBudgetBound(t *testing.T) {
	b := newBudget(100)
	a, c := b.lease(), b.lease()
	if err := a.grow(t.Context(), 60); err != nil {
		t.Fatal(err)
	}
	// a is running, so c must wait for a to give memory back.
	ch := growAsync(c, 50)
	waitQueued(b, 1)
	if granted(ch) {
		t.Fatal("granted beyond the bound while another lease could free memory")
	}
	a.shrink(10)
	if err := <-ch; err != nil {
		t.Fatal(err)
	}
	if b.used != 100 || a.n != 50 || c.n != 50 {
		t.Fatalf("used %d, leases %d and %d", b.used, a.n, c.n)
	}
	a.release()
	c.release()
	if b.used != 0 || b.running != 0 {
		t.Fatalf("after release: used %d, running %d", b.used, b.running)
	}
}

// TestBudgetNoDeadlock: leases that each hold part of the budget and all
// wait for more must not wait forever: the first is let through.
func TestBudgetNoDeadlock(t *testing.T) {
	b := newBudget(100)
	a, c := b.lease(), b.lease()
	a.grow(t.Context(), 50)
	c.grow(t.Context(), 50)
	cha := growAsync(a, 40)
	waitQueued(b, 1)
	chc := growAsync(c, 40) // now every holder waits: a goes over the bound
	if err := <-cha; err != nil {
		t.Fatal(err)
	}
	if granted(chc) {
		t.Fatal("both leases let through over the bound")
	}
	a.release()
	if err := <-chc; err != nil {
		t.Fatal(err)
	}
	c.release()
	if b.used != 0 || b.running != 0 || len(b.queue) != 0 {
		t.Fatalf("after release: used %d, running %d, queued %d", b.used, b.running, len(b.queue))
	}
}

func TestBudgetCancel(t *testing.T) {
	b := newBudget(100)
	a, c := b.lease(), b.lease()
	a.grow(t.Context(), 100)
	ctx, cancel := context.WithCancel(t.Context())
	ch := make(chan error, 1)
	go func() { ch <- c.grow(ctx, 10) }()
	waitQueued(b, 1)
	cancel()
	if err := <-ch; !errors.Is(err, context.Canceled) {
		t.Fatalf("grow with a cancelled context = %v", err)
	}
	a.release()
	if b.used != 0 || b.running != 0 || len(b.queue) != 0 {
		t.Fatalf("after release: used %d, running %d, queued %d", b.used, b.running, len(b.queue))
	}
}
