package gateway

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// state keeps the packet views in their own Badger database. It is a cache
// of the ledger: after an unclean stop it is dropped and rebuilt, so its
// writes need no fsync.
//
//	p<id>                packet view (JSON)
//	o<origin>\x00<id>    outbox index
//	d<dest>\x00<id>      inbox index
//	i<scope>             idempotency record (JSON, with a TTL)
//	mclean               ledger size when the gateway last closed cleanly
//
// Nothing else in the package touches Badger.
type state struct {
	db *badger.DB
}

var keyClean = []byte("mclean")

func openState(dir string, log *slog.Logger) (*state, error) {
	db, err := badger.Open(badger.DefaultOptions(dir).
		WithLogger(quietLogger{log}).
		WithNumCompactors(2).
		WithMetricsEnabled(false))
	if err != nil {
		return nil, fmt.Errorf("gateway: open state: %w", err)
	}
	return &state{db: db}, nil
}

func (s *state) close() error { return s.db.Close() }

// reset drops every view, before a rebuild.
func (s *state) reset() error { return s.db.DropAll() }

// getReplay reads the idempotency record of scope into r.
func (s *state) getReplay(scope string, r *Replay) bool {
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(append([]byte{'i'}, scope...))
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error { return json.Unmarshal(v, r) })
	})
	return err == nil
}

// putReplay stores the idempotency record of scope for ttl.
func (s *state) putReplay(scope string, r Replay, ttl time.Duration) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.db.Update(func(txn *badger.Txn) error {
		return txn.SetEntry(badger.NewEntry(append([]byte{'i'}, scope...), b).WithTTL(ttl))
	})
}

func (s *state) get(id string) (*Packet, error) {
	var p Packet
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(append([]byte{'p'}, id...))
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error { return json.Unmarshal(v, &p) })
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("gateway: read packet: %w", err)
	}
	return &p, nil
}

func (s *state) put(p *Packet) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return s.db.Update(func(txn *badger.Txn) error {
		if err := txn.Set(append([]byte{'p'}, p.ID...), b); err != nil {
			return err
		}
		if err := txn.Set(indexKey('o', p.Origin, p.ID), nil); err != nil {
			return err
		}
		return txn.Set(indexKey('d', p.Destination, p.ID), nil)
	})
}

func indexKey(box byte, agency, id string) []byte {
	k := append([]byte{box}, agency...)
	k = append(k, 0)
	return append(k, id...)
}

// list returns the packets in an agency's outbox ('o') or inbox ('d').
func (s *state) list(box byte, agency string) ([]*Packet, error) {
	var out []*Packet
	err := s.db.View(func(txn *badger.Txn) error {
		prefix := indexKey(box, agency, "")
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			id := it.Item().Key()[len(prefix):]
			item, err := txn.Get(append([]byte{'p'}, id...))
			if err != nil {
				return err
			}
			var p Packet
			if err := item.Value(func(v []byte) error { return json.Unmarshal(v, &p) }); err != nil {
				return err
			}
			out = append(out, &p)
		}
		return nil
	})
	return out, err
}

// cleanSize returns the ledger size recorded at the last clean close.
func (s *state) cleanSize() (int64, bool) {
	var n int64
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(keyClean)
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			if len(v) != 8 {
				return errors.New("malformed")
			}
			n = int64(binary.BigEndian.Uint64(v))
			return nil
		})
	})
	return n, err == nil
}

func (s *state) setClean(size int64) error {
	return s.db.Update(func(txn *badger.Txn) error {
		return txn.Set(keyClean, binary.BigEndian.AppendUint64(nil, uint64(size)))
	})
}

// markDirty removes the clean marker, synced, so that a crash from now on
// makes the next start rebuild the views.
func (s *state) markDirty() error {
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Delete(keyClean) }); err != nil {
		return err
	}
	return s.db.Sync()
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
