package gateway

import "fmt"

// version is the seq of the packet's last entry that changed it: every
// entry but downloads and integrity notes, which only add to its history.
// A step that streams an upload without the packet's lock takes the
// version before and checks it again under the lock, so that it never
// builds on a packet that moved on meanwhile, even one that came back to
// the same status (supplemented, received and returned again).
func (p *Packet) version() int64 {
	for i := len(p.History) - 1; i >= 0; i-- {
		if t := p.History[i].Type; t != EntryDownloaded && t != EntryViolation {
			return p.History[i].Seq
		}
	}
	return p.SubmittedSeq
}

// unchanged reports a conflict when p's version is no longer the one a
// step (named what) started from.
func unchanged(p *Packet, version int64, what string) error {
	if v := p.version(); v != version {
		return fmt.Errorf("%w: the packet changed while the %s was uploading (entry %d since %d); nothing was recorded, send it again if it still applies", ErrConflict, what, v, version)
	}
	return nil
}
