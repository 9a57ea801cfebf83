package ledger

import "encoding/binary"

// Badger key layout. Numbers are 8-byte big-endian so keys sort by value.
//
//	e<seq>              canonical entry bytes
//	h<chunk>            stored tree hashes chunk*64 .. chunk*64+63, concatenated
//	p<packet>\x00<seq>  empty: the packet index
//	c<size>             signed checkpoint note of that tree size
//	msize               committed tree size
//
// Tree hashes are kept in chunks so a full verification reads a few
// thousand values instead of two million, while a proof still costs
// O(log n) reads.
const chunkHashes = 64

var keySize = []byte("msize")

func entryKey(seq int64) []byte { return be('e', seq) }
func chunkKey(c int64) []byte   { return be('h', c) }

func checkpointKey(size int64) []byte { return be('c', size) }

func packetPrefix(packet string) []byte {
	return appendPacketPrefix(make([]byte, 0, len(packet)+2), packet)
}

func packetKey(packet string, seq int64) []byte {
	k := appendPacketPrefix(make([]byte, 0, len(packet)+10), packet)
	return binary.BigEndian.AppendUint64(k, uint64(seq))
}

func appendPacketPrefix(b []byte, packet string) []byte {
	return append(append(append(b, 'p'), packet...), 0)
}

func be(prefix byte, n int64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefix}, uint64(n))
}
