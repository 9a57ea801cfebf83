// Package ledger is Tongban's shared audit log: an append-only sequence of
// canonical JSON entries, hash-chained and kept in an RFC 6962 Merkle tree
// stored in Badger, with checkpoints signed as C2SP signed notes.
//
// The ledger knows nothing of packets beyond an opaque packet id used for
// lookups; the meaning of entry types and payloads belongs to its callers.
//
// What it guarantees:
//   - Append returns only after the entry and its tree hashes are synced
//     to disk; seqs are dense from 0, and seq order is commit order.
//     Each entry's prev is the leaf hash of the entry before it.
//   - A failed commit records nothing: the next append continues from the
//     last durable entry, and Err reports the failure until a commit
//     succeeds again.
//   - There is one sequencer: a second Open of the same directory, in this
//     process or another, fails with ErrLocked.
//   - Checkpoint covers every entry acknowledged before the call, and the
//     ledger never signs two checkpoints that disagree: Open refuses a tree
//     that no longer matches the last checkpoint it signed.
//   - Verify re-derives every leaf, tree hash and checkpoint from the
//     stored entries and names the first bad seq.
//
// The formats (canonical entries, leaf hashes, checkpoints, proofs) belong
// to the package ledger/format, which offline verifiers use without
// Badger, and are described in docs/formats.md. The layout of the Badger
// keys is in keys.go.
package ledger
