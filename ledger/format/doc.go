// Package format holds the ledger's wire formats: canonical entries and
// their RFC 6962 leaf hashes, C2SP checkpoints signed as notes with
// Ed25519 keys, and the checks of inclusion and consistency proofs.
//
// It has no state and depends on neither Badger nor the network, so
// offline verifiers (tongban verify, bundle checks) use it alone. One
// entry has exactly one encoding: ParseEntry accepts only the bytes that
// Marshal produces, so an entry has one leaf hash.
//
// The formats are described for people in docs/formats.md in the
// repository; a change to them is a change to every bundle and receipt
// already handed out.
package format
