package gateway

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"tongban/ledger"
)

// state keeps the packet views in their own Badger database. It is a cache
// of the ledger that knows how far it got: every view update writes, in the
// same transaction, the watermark below which every entry is applied, so
// after any stop only the entries past it are replayed. Its writes need no
// fsync: Badger's log holds whole transactions, so a lost tail loses the
// watermark with the views.
//
//	p<id>                              packet view (JSON, without history)
//	h<id><seq>                         one history event (JSON)
//	xI<dest>\0<st>\0<deadline><seq>    inbox index, by deadline
//	xO<origin>\0<st>\0<seq>            outbox index, by submission
//	xA<st>\0<submitted><seq>           all packets, by submission
//	xT<item>\0<submitted><seq>         all packets of an item, by submission
//	c<scope>\0<status>                 packet count (scope: I<dest>, O<origin>, A)
//	i<scope>                           idempotency record (JSON, with a TTL)
//	mapplied                           watermark: entries [0, n) are applied
//	mversion                           layout version
//
// st is a status or "*" (every status); numbers are 8 bytes big-endian
// (times in Unix nanoseconds), so keys sort as the listings do. Index
// values are rows: what the filters need, so nothing else is read until a
// page is filled. Nothing else in the package touches Badger.
type state struct {
	db  *badger.DB
	log *slog.Logger

	mu      sync.Mutex     // serialises read-write transactions (no conflicts)
	applied int64          // watermark
	done    map[int64]bool // entries applied past a gap in the watermark
}

const stateVersion = "2"

var (
	keyApplied = []byte("mapplied")
	keyVersion = []byte("mversion")
)

func openState(dir string, log *slog.Logger) (*state, error) {
	// Smaller memtables and block cache than Badger's defaults (64 MiB
	// each, 256 MiB): the views are small records, and the gateway's
	// memory should not be mostly Badger's arenas.
	db, err := badger.Open(badger.DefaultOptions(dir).
		WithLogger(quietLogger{log}).
		WithNumCompactors(2).
		WithMemTableSize(16 << 20).
		WithBlockCacheSize(32 << 20).
		WithMetricsEnabled(false))
	if err != nil {
		return nil, fmt.Errorf("gateway: open state: %w", err)
	}
	return &state{db: db, log: log, done: map[int64]bool{}}, nil
}

func (s *state) close() error { return s.db.Close() }

// watermark reads the stored watermark; ok is false when the views are of
// another layout or were never written, and must be rebuilt.
func (s *state) watermark() (n int64, ok bool) {
	err := s.db.View(func(txn *badger.Txn) error {
		v, err := getValue(txn, keyVersion)
		if err != nil || string(v) != stateVersion {
			return errors.New("no version")
		}
		if v, err = getValue(txn, keyApplied); err != nil || len(v) != 8 {
			return errors.New("no watermark")
		}
		n = int64(binary.BigEndian.Uint64(v))
		return nil
	})
	return n, err == nil
}

// reset drops every view, before a full rebuild.
func (s *state) reset() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.db.DropAll(); err != nil {
		return err
	}
	s.applied, s.done = 0, map[int64]bool{}
	return s.db.Update(func(txn *badger.Txn) error {
		if err := txn.Set(keyVersion, []byte(stateVersion)); err != nil {
			return err
		}
		return txn.Set(keyApplied, be8(0))
	})
}

func getValue(txn *badger.Txn, key []byte) ([]byte, error) {
	item, err := txn.Get(key)
	if err != nil {
		return nil, err
	}
	return item.ValueCopy(nil)
}

func be8(n int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(n)) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// getReplay reads the idempotency record of scope into r.
func (s *state) getReplay(scope string, r *Replay) bool {
	err := s.db.View(func(txn *badger.Txn) error {
		v, err := getValue(txn, append([]byte{'i'}, scope...))
		if err != nil {
			return err
		}
		return json.Unmarshal(v, r)
	})
	return err == nil
}

func (s *state) get(id string) (*Packet, error) {
	var p *Packet
	err := s.db.View(func(txn *badger.Txn) (err error) {
		p, err = getPacket(txn, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("gateway: read packet: %w", err)
	}
	if p == nil {
		return nil, ErrNotFound
	}
	return p, nil
}

// getPacket reads a view in txn; nil if there is none.
func getPacket(txn *badger.Txn, id string) (*Packet, error) {
	item, err := txn.Get(append([]byte{'p'}, id...))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var p Packet
	if err := item.Value(func(v []byte) error { return json.Unmarshal(v, &p) }); err != nil {
		return nil, err
	}
	return &p, nil
}

// row is what an index entry holds: enough to filter without the view.
type row struct {
	ID          string `json:"id"`
	Status      string `json:"s"`
	Item        string `json:"i"`
	Origin      string `json:"o"`
	Destination string `json:"d"`
	Submitted   int64  `json:"t"`
	Deadline    int64  `json:"dl"`
	Paused      bool   `json:"pz,omitempty"`
}

func rowOf(p *Packet) row {
	return row{ID: p.ID, Status: p.Status, Item: p.Item, Origin: p.Origin, Destination: p.Destination,
		Submitted: p.Submitted.UnixNano(), Deadline: p.Deadline.UnixNano(), Paused: p.PausedAt != nil}
}

// overdue is Packet.withOverdue's rule on a row.
func (r *row) overdue(now time.Time) bool {
	return !closedStatus(r.Status) && !r.Paused && now.UnixNano() > r.Deadline
}

// Index prefixes; st is a status or "*".
func inboxPrefix(dest, st string) []byte {
	return cat([]byte("xI"), []byte(dest), []byte{0}, []byte(st), []byte{0})
}
func outboxPrefix(origin, st string) []byte {
	return cat([]byte("xO"), []byte(origin), []byte{0}, []byte(st), []byte{0})
}
func allPrefix(st string) []byte    { return cat([]byte("xA"), []byte(st), []byte{0}) }
func itemPrefix(item string) []byte { return cat([]byte("xT"), []byte(item), []byte{0}) }

// indexKeys returns every index key of a view.
func indexKeys(p *Packet) [][]byte {
	seq, dl, sub := be8(p.SubmittedSeq), be8(p.Deadline.UnixNano()), be8(p.Submitted.UnixNano())
	var ks [][]byte
	for _, st := range []string{p.Status, "*"} {
		ks = append(ks,
			cat(inboxPrefix(p.Destination, st), dl, seq),
			cat(outboxPrefix(p.Origin, st), seq),
			cat(allPrefix(st), sub, seq))
	}
	return append(ks, cat(itemPrefix(p.Item), sub, seq))
}

func countKeys(p *Packet) [][]byte {
	return [][]byte{countKey("I"+p.Destination, p.Status), countKey("O"+p.Origin, p.Status), countKey("A", p.Status)}
}

func countKey(scope, status string) []byte {
	return cat([]byte{'c'}, []byte(scope), []byte{0}, []byte(status))
}

func historyKey(id string, seq int64) []byte { return cat([]byte{'h'}, []byte(id), be8(seq)) }

// applyTxn folds rec into its packet's view inside txn: the view, its
// index entries and counts, its history event and the idempotency record
// the entry names. An entry the view already holds is skipped, so a
// replay may start before the first unapplied entry.
func (s *state) applyTxn(txn *badger.Txn, rec *ledger.Record, names func(string) map[string]string) (*Packet, error) {
	if rec.Packet == "" {
		return nil, nil
	}
	cur, err := getPacket(txn, rec.Packet)
	if err != nil {
		return nil, err
	}
	if cur != nil && rec.Seq <= cur.LastSeq {
		return cur, nil
	}
	if cur == nil && rec.Type != EntrySubmitted {
		// Only an integrity violation names a packet without a view.
		s.log.Warn("ledger entry for a packet without a view", "seq", rec.Seq, "type", rec.Type, "packet", rec.Packet)
		return nil, nil
	}
	next, err := apply(cur, rec, names)
	if err != nil {
		return nil, err
	}
	if cur != nil {
		for _, k := range indexKeys(cur) {
			if err := txn.Delete(k); err != nil {
				return nil, err
			}
		}
		for _, k := range countKeys(cur) {
			if err := addCount(txn, k, -1); err != nil {
				return nil, err
			}
		}
	}
	v, err := json.Marshal(next)
	if err != nil {
		return nil, err
	}
	if err := txn.Set(append([]byte{'p'}, next.ID...), v); err != nil {
		return nil, err
	}
	r, err := json.Marshal(rowOf(next))
	if err != nil {
		return nil, err
	}
	for _, k := range indexKeys(next) {
		if err := txn.Set(k, r); err != nil {
			return nil, err
		}
	}
	for _, k := range countKeys(next) {
		if err := addCount(txn, k, 1); err != nil {
			return nil, err
		}
	}
	ev, err := json.Marshal(eventOf(rec))
	if err != nil {
		return nil, err
	}
	if err := txn.Set(historyKey(next.ID, rec.Seq), ev); err != nil {
		return nil, err
	}
	return next, rememberTxn(txn, rec)
}

func addCount(txn *badger.Txn, key []byte, d int64) error {
	var n int64
	v, err := getValue(txn, key)
	switch {
	case err == nil && len(v) == 8:
		n = int64(binary.BigEndian.Uint64(v))
	case err != nil && !errors.Is(err, badger.ErrKeyNotFound):
		return err
	}
	if n += d; n <= 0 {
		return txn.Delete(key)
	}
	return txn.Set(key, be8(n))
}

// rememberTxn stores the idempotency record an entry names, with what is
// left of its TTL.
func rememberTxn(txn *badger.Txn, rec *ledger.Record) error {
	var pl struct {
		Idem *idemPayload `json:"idem"`
	}
	if json.Unmarshal(rec.Payload, &pl) != nil || pl.Idem == nil {
		return nil
	}
	r := replayOf(rec, pl.Idem.Body)
	ttl := time.Until(r.Time.Add(IdempotencyTTL))
	if ttl <= 0 {
		return nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return txn.SetEntry(badger.NewEntry(append([]byte{'i'}, pl.Idem.Key...), b).WithTTL(ttl))
}

// record applies one entry appended by this gateway and moves the
// watermark as far as the entries applied so far allow. Entries are
// appended concurrently, so one may arrive before an earlier one.
func (s *state) record(rec *ledger.Record, names func(string) map[string]string) (*Packet, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	p, err := s.applyTxn(txn, rec, names)
	if err != nil {
		return nil, err
	}
	w := s.applied
	if rec.Seq == w {
		for w++; s.done[w]; w++ {
		}
	}
	if err := txn.Set(keyApplied, be8(w)); err != nil {
		return nil, err
	}
	if err := txn.Commit(); err != nil {
		return nil, err
	}
	if rec.Seq == s.applied {
		for n := s.applied; n < w; n++ {
			delete(s.done, n)
		}
		s.applied = w
	} else {
		s.done[rec.Seq] = true
	}
	return p, nil
}

// replay applies recs, which follow the watermark in order, in as few
// transactions as Badger allows: a chunk that does not fit in one is
// dropped whole and retried in halves, so no entry is ever half applied.
func (s *state) replay(recs []*ledger.Record, names func(string) map[string]string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(recs) > 0 && recs[0].Seq < s.applied {
		recs = recs[1:]
	}
	for k := len(recs); len(recs) > 0; {
		k = min(k, len(recs))
		err := s.replayChunk(recs[:k], names)
		if errors.Is(err, badger.ErrTxnTooBig) && k > 1 {
			k /= 2
			continue
		}
		if err != nil {
			return err
		}
		recs = recs[k:]
	}
	return nil
}

func (s *state) replayChunk(recs []*ledger.Record, names func(string) map[string]string) error {
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	for _, rec := range recs {
		if _, err := s.applyTxn(txn, rec, names); err != nil {
			return fmt.Errorf("entry %d: %w", rec.Seq, err)
		}
	}
	w := recs[len(recs)-1].Seq + 1
	if err := txn.Set(keyApplied, be8(w)); err != nil {
		return err
	}
	if err := txn.Commit(); err != nil {
		return err
	}
	s.applied = w
	return nil
}

// count returns the number of packets per status in scope.
func (s *state) count(scope string) (map[string]int64, error) {
	out := map[string]int64{}
	err := s.db.View(func(txn *badger.Txn) error {
		for _, st := range allStatuses {
			v, err := getValue(txn, countKey(scope, st))
			if errors.Is(err, badger.ErrKeyNotFound) {
				out[st] = 0
				continue
			}
			if err != nil {
				return err
			}
			out[st] = int64(binary.BigEndian.Uint64(v))
		}
		return nil
	})
	return out, err
}

// scan walks the index entries under prefix, in key order (reverse:
// backwards), from just past the key suffix after (nil: from the start,
// or the end), until fn returns false. The views of the rows fn keeps are read in the same snapshot.
func (s *state) scan(prefix, after []byte, reverse bool, fn func(suffix []byte, r *row) (keep, more bool), views func(*Packet)) error {
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: false, Reverse: reverse})
		defer it.Close()
		start := append(append([]byte(nil), prefix...), after...)
		if reverse && after == nil {
			start = append(start, bytes.Repeat([]byte{0xff}, 16)...) // past every suffix: deadline or time, then seq
		}
		var ids []string
		for it.Seek(start); it.Valid(); it.Next() {
			item := it.Item()
			suffix := item.Key()[len(prefix):]
			if after != nil && bytes.Equal(suffix, after) {
				continue
			}
			var r row
			if err := item.Value(func(v []byte) error { return json.Unmarshal(v, &r) }); err != nil {
				return err
			}
			keep, more := fn(append([]byte(nil), suffix...), &r)
			if keep {
				ids = append(ids, r.ID)
			}
			if !more {
				break
			}
		}
		for _, id := range ids {
			p, err := getPacket(txn, id)
			if err != nil {
				return err
			}
			if p != nil {
				views(p)
			}
		}
		return nil
	})
}

// history returns up to n events of a packet before seq before (all:
// before < 0), oldest first, and whether there are older ones.
func (s *state) history(id string, before int64, n int) ([]Event, bool, error) {
	var evs []Event
	more := false
	err := s.db.View(func(txn *badger.Txn) error {
		prefix := cat([]byte{'h'}, []byte(id))
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: true})
		defer it.Close()
		seek := historyKey(id, before-1)
		if before < 0 {
			seek = cat(prefix, bytes.Repeat([]byte{0xff}, 8))
		}
		for it.Seek(seek); it.Valid(); it.Next() {
			if len(evs) == n {
				more = true
				break
			}
			var e Event
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &e) }); err != nil {
				return err
			}
			evs = append(evs, e)
		}
		return nil
	})
	for i, j := 0, len(evs)-1; i < j; i, j = i+1, j-1 {
		evs[i], evs[j] = evs[j], evs[i]
	}
	return evs, more, err
}

// dump calls fn with every key and value, in order: for tests comparing
// two sets of views.
func (s *state) dump(fn func(k, v []byte)) error {
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			fn(it.Item().KeyCopy(nil), v)
		}
		return nil
	})
}

type quietLogger struct{ l *slog.Logger }

func (q quietLogger) Errorf(f string, a ...any) {
	q.l.Error(fmt.Sprintf(f, a...), "component", "badger-state")
}
func (q quietLogger) Warningf(f string, a ...any) {
	q.l.Warn(fmt.Sprintf(f, a...), "component", "badger-state")
}
func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Debugf(string, ...any) {}

// CompareViews compares two stopped gateways' view databases key by key
// and value by value (the idempotency records' expiry aside), and
// describes the first difference.
func CompareViews(dirA, dirB string) error {
	open := func(dir string) (*badger.DB, error) {
		return badger.Open(badger.DefaultOptions(dir).WithReadOnly(true).WithLogger(nil).WithMetricsEnabled(false))
	}
	a, err := open(dirA)
	if err != nil {
		return err
	}
	defer a.Close()
	b, err := open(dirB)
	if err != nil {
		return err
	}
	defer b.Close()
	ta, tb := a.NewTransaction(false), b.NewTransaction(false)
	defer ta.Discard()
	defer tb.Discard()
	ia, ib := ta.NewIterator(badger.DefaultIteratorOptions), tb.NewIterator(badger.DefaultIteratorOptions)
	defer ia.Close()
	defer ib.Close()
	n := 0
	ia.Rewind()
	ib.Rewind()
	// The collector's index (keys "G…", gcindex.go) is not derived from
	// the ledger alone: it notes objects as they are stored.
	gcKey := func(it *badger.Iterator) bool { return it.Valid() && bytes.HasPrefix(it.Item().Key(), []byte("G")) }
	for ; ia.Valid() || ib.Valid(); ia.Next() {
		for gcKey(ia) {
			ia.Next()
		}
		for gcKey(ib) {
			ib.Next()
		}
		switch {
		case !ia.Valid() && !ib.Valid() && n > 0:
			return nil
		case !ia.Valid() && !ib.Valid():
			return errors.New("views: both empty")
		case !ia.Valid():
			return fmt.Errorf("views differ: %q only in %s", ib.Item().Key(), dirB)
		case !ib.Valid():
			return fmt.Errorf("views differ: %q only in %s", ia.Item().Key(), dirA)
		}
		ka, kb := ia.Item().Key(), ib.Item().Key()
		if !bytes.Equal(ka, kb) {
			return fmt.Errorf("views differ at key %q (%s) / %q (%s)", ka, dirA, kb, dirB)
		}
		va, err := ia.Item().ValueCopy(nil)
		if err != nil {
			return err
		}
		vb, err := ib.Item().ValueCopy(nil)
		if err != nil {
			return err
		}
		if !bytes.Equal(va, vb) {
			return fmt.Errorf("views differ at key %q: %q / %q", ka, va, vb)
		}
		ib.Next()
		n++
	}
	if n == 0 {
		return errors.New("views: both empty")
	}
	return nil
}
