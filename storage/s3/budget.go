package s3

import (
	"context"
	"sync"
)

// budget bounds the bytes of buffer memory all Puts hold at once. A Put
// takes a lease and grows it as its stream turns out longer; a Put that
// would exceed the bound waits, which stops it reading its client.
//
// A Put waits while holding what it already has, so all memory could end
// up held by waiting Puts. When no holder is left running, the first
// waiter is let through anyway: the bound can then be exceeded by at most
// one Put's own need (two parts), never deadlocked.
type budget struct {
	mu      sync.Mutex
	max     int64
	used    int64
	running int // leases holding bytes and not waiting
	queue   []*waiter
}

type waiter struct {
	l     *lease
	n     int64
	ready chan struct{} // closed when granted
}

// lease is one Put's share of a budget. Not safe for concurrent use.
type lease struct {
	b *budget
	n int64
}

func newBudget(max int64) *budget { return &budget{max: max} }

func (b *budget) lease() *lease { return &lease{b: b} }

// grow adds n bytes to the lease, waiting for them if need be.
func (l *lease) grow(ctx context.Context, n int64) error {
	b := l.b
	b.mu.Lock()
	if len(b.queue) == 0 && b.used+n <= b.max {
		b.take(l, n)
		b.mu.Unlock()
		return nil
	}
	w := &waiter{l: l, n: n, ready: make(chan struct{})}
	b.queue = append(b.queue, w)
	if l.n > 0 {
		b.running--
	}
	b.wake()
	b.mu.Unlock()

	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		b.mu.Lock()
		defer b.mu.Unlock()
		select {
		case <-w.ready: // granted meanwhile: keep it, the caller releases
			return nil
		default:
		}
		for i, q := range b.queue {
			if q == w {
				b.queue = append(b.queue[:i], b.queue[i+1:]...)
				break
			}
		}
		if l.n > 0 {
			b.running++
		}
		b.wake()
		return ctx.Err()
	}
}

// shrink gives n of the lease's bytes back.
func (l *lease) shrink(n int64) {
	if n <= 0 {
		return
	}
	b := l.b
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	l.n -= n
	if l.n == 0 {
		b.running--
	}
	b.wake()
}

// release gives all of the lease's bytes back.
func (l *lease) release() { l.shrink(l.n) }

// take grants n bytes to l; b.mu is held and l is not queued.
func (b *budget) take(l *lease, n int64) {
	if l.n == 0 && n > 0 {
		b.running++
	}
	b.used += n
	l.n += n
}

// wake grants queued requests in order while they fit, or the first one
// when nothing else could ever free memory; b.mu is held.
func (b *budget) wake() {
	for len(b.queue) > 0 {
		w := b.queue[0]
		if b.used+w.n > b.max && b.running > 0 {
			return
		}
		b.queue = b.queue[1:]
		b.used += w.n
		w.l.n += w.n
		b.running++ // holding, and running again
		close(w.ready)
	}
}
