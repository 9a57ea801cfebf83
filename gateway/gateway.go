// Package gateway is Tongban's domain: the service-item catalogue, the
// checks on applicants and files, and the packet workflow between an origin
// window and a destination agency. Every workflow step is one ledger entry;
// every file is streamed into content-addressed storage while it is hashed
// and checked. The package knows neither HTTP nor Badger's ledger layout nor
// S3: it appends to the ledger (*ledger.Ledger) and stores objects through
// storage.Store. Its own Badger database, a cache of packet views rebuilt
// from the ledger, sits behind one type (state).
package gateway

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-playground/validator/v10"

	"tongban/gateway/ident"
	"tongban/gateway/workday"
	"tongban/ledger"
	"tongban/storage"
)

// Limits bound what one request may make the gateway read.
type Limits struct {
	MaxManifestBytes int64 // default 64 KiB
	MaxMaterials     int   // files per packet, default 32
	MaxReasonBytes   int   // default 4 KiB
}

// Config configures New. Catalog, Agencies, Store, Ledger and StateDir are required.
type Config struct {
	Catalog  *Catalog
	Agencies []Agency
	Store    storage.Store
	Ledger   *ledger.Ledger
	StateDir string // Badger directory for the packet views
	// ApplicantKey keys the HMAC that stands for applicant identifiers in
	// the ledger. It must stay the same for the life of the ledger.
	ApplicantKey []byte
	Limits       Limits
	Logger       *slog.Logger
	Now          func() time.Time
	// Calendar counts working days for deadlines; nil: the built-in
	// holiday table without overrides.
	Calendar *workday.Calendar
	// RecoverInBackground makes New return before the views have caught
	// up with the ledger (see Recovering).
	RecoverInBackground bool
	// SM3 is the gm crypto profile's digest side (docs/gm.md): every
	// stored file and manifest also gets an SM3 digest, from the same
	// pass as its SHA-256, recorded beside it in the ledger and manifest.
	SM3 bool
	// Cosigned, if set, returns the newest checkpoint cosigned by a quorum
	// of the log's witnesses that covers the tree of the given size, with
	// a consistency proof from that size to it; bundles carry both. It may
	// wait (within ctx) for the witnesses to catch up.
	Cosigned func(ctx context.Context, size int64) (signed []byte, proof []ledger.Hash, err error)
}

// Gateway runs the packet workflow. Its methods are safe for concurrent use.
type Gateway struct {
	cfg      Config
	agencies map[string]*Agency
	state    *state
	validate *validator.Validate
	locks    [256]sync.Mutex // per-packet serialisation, striped by id
	log      *slog.Logger

	inflightMu      sync.Mutex
	inflight        map[string]int  // objects stored by requests not yet recorded (see claim)
	claimedDuringGC map[string]bool // objects claimed since the running collection began; nil between collections
	gcMu            sync.Mutex      // one collection at a time

	appends     atomic.Int64 // ledger appends made, and their total latency
	appendNanos atomic.Int64

	recovering   atomic.Bool  // the views are catching up with the ledger
	recovered    atomic.Int64 // entries replayed of recoverTotal
	recoverTotal atomic.Int64
	recoverErr   atomic.Pointer[error]
	stopRecovery context.CancelFunc // nil unless recovering in the background
	recoveryDone chan struct{}

	gcDeleting map[string]chan struct{} // objects the collector is deleting, under inflightMu; closed when done (see claim)
}

// New opens the packet views in cfg.StateDir and brings them up to the
// ledger: only the entries past the views' watermark are replayed (all of
// them if the views are missing or of another layout). With
// cfg.RecoverInBackground the replay runs after New returns, and until it
// is done Ready reports progress and the packet operations answer
// ErrRecovering.
func New(ctx context.Context, cfg Config) (*Gateway, error) {
	switch {
	case cfg.Catalog == nil, cfg.Store == nil, cfg.Ledger == nil, cfg.StateDir == "":
		return nil, errors.New("gateway: Catalog, Store, Ledger and StateDir are required")
	case len(cfg.ApplicantKey) < 16:
		return nil, errors.New("gateway: ApplicantKey must be at least 16 bytes")
	}
	cfg.Catalog.Normalize()
	if err := cfg.Catalog.Validate(); err != nil {
		return nil, fmt.Errorf("gateway: catalogue: %w", err)
	}
	if cfg.Limits.MaxManifestBytes <= 0 {
		cfg.Limits.MaxManifestBytes = 64 << 10
	}
	if cfg.Limits.MaxMaterials <= 0 {
		cfg.Limits.MaxMaterials = 32
	}
	if cfg.Limits.MaxReasonBytes <= 0 {
		cfg.Limits.MaxReasonBytes = 4 << 10
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Calendar == nil {
		cfg.Calendar, _ = workday.New(nil) // no overrides: cannot fail
	}
	g := &Gateway{cfg: cfg, agencies: make(map[string]*Agency), inflight: make(map[string]int), validate: validator.New(validator.WithRequiredStructEnabled()), log: cfg.Logger}
	if err := ident.RegisterValidators(g.validate); err != nil {
		return nil, err
	}
	g.validate.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		return name
	})
	for i := range cfg.Agencies {
		a := &cfg.Agencies[i]
		if err := g.validate.Struct(a); err != nil {
			return nil, fmt.Errorf("gateway: agency %q: %w", a.ID, err)
		}
		if _, dup := g.agencies[a.ID]; dup {
			return nil, fmt.Errorf("gateway: agency id %q appears twice", a.ID)
		}
		g.agencies[a.ID] = a
	}
	var err error
	if g.state, err = openState(cfg.StateDir, cfg.Logger); err != nil {
		return nil, err
	}
	if err := g.recover(ctx); err != nil {
		g.state.close()
		return nil, err
	}
	return g, nil
}

// ErrRecovering is the answer of packet operations while the views are
// being brought up to the ledger.
var ErrRecovering = fmt.Errorf("%w: recovering: the packet views are being brought up to the ledger", ErrUnavailable)

// recover replays the entries past the views' watermark, in the
// background if so configured.
func (g *Gateway) recover(ctx context.Context) error {
	size := g.cfg.Ledger.Size()
	from, ok := g.state.watermark()
	if !ok || from > size {
		if err := g.state.reset(); err != nil {
			return fmt.Errorf("gateway: reset views: %w", err)
		}
		from = 0
	}
	g.state.applied = from
	if from == size {
		return nil
	}
	g.recovering.Store(true)
	g.recoverTotal.Store(size - from)
	if !g.cfg.RecoverInBackground {
		return g.catchUp(ctx, from, size)
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	g.stopRecovery = cancel
	g.recoveryDone = make(chan struct{})
	go func() {
		defer close(g.recoveryDone)
		if err := g.catchUp(bg, from, size); err != nil {
			g.recoverErr.Store(&err)
			g.log.Error("packet views not recovered", "err", err)
		}
	}()
	return nil
}

// Recovering reports ErrRecovering with progress while the views catch up
// with the ledger, and nil once they have.
func (g *Gateway) Recovering() error {
	if !g.recovering.Load() {
		return nil
	}
	if p := g.recoverErr.Load(); p != nil {
		return fmt.Errorf("%w: %w", ErrRecovering, *p)
	}
	done, total := g.RecoveryProgress()
	return fmt.Errorf("%w (%d of %d entries)", ErrRecovering, done, total)
}

// RecoveryProgress returns how many of the entries to replay are done.
func (g *Gateway) RecoveryProgress() (done, total int64) {
	return g.recovered.Load(), g.recoverTotal.Load()
}

// Rebuild drops the views and rebuilds them from the whole ledger,
// streaming. The gateway must not be serving.
func (g *Gateway) Rebuild(ctx context.Context) error {
	g.waitRecovery()
	if err := g.state.reset(); err != nil {
		return fmt.Errorf("gateway: reset views: %w", err)
	}
	size := g.cfg.Ledger.Size()
	g.recovering.Store(true)
	g.recovered.Store(0)
	g.recoverTotal.Store(size)
	return g.catchUp(ctx, 0, size)
}

// DumpViews calls fn with every key and value of the views, in key order.
func (g *Gateway) DumpViews(fn func(k, v []byte)) error { return g.state.dump(fn) }

func (g *Gateway) waitRecovery() {
	if g.stopRecovery != nil {
		g.stopRecovery()
		<-g.recoveryDone
		g.stopRecovery = nil
	}
}

// Close closes the views. Close the gateway before the ledger.
func (g *Gateway) Close() error {
	g.waitRecovery()
	return g.state.close()
}

// Ready reports whether the gateway can take writes: the object store
// answers and the ledger's last commit did not fail.
func (g *Gateway) Ready(ctx context.Context) error {
	if err := g.Recovering(); err != nil {
		return err
	}
	if err := g.cfg.Ledger.Err(); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	if err := g.cfg.Store.Ping(ctx); err != nil {
		return fmt.Errorf("object store: %w", err)
	}
	return nil
}

// Catalog returns the service-item catalogue.
func (g *Gateway) Catalog() *Catalog { return g.cfg.Catalog }

// Agencies returns the configured agencies, in their configured order.
func (g *Gateway) Agencies() []Agency { return append([]Agency(nil), g.cfg.Agencies...) }

func (g *Gateway) lock(id string) func() {
	h := fnv.New32a()
	h.Write([]byte(id))
	m := &g.locks[h.Sum32()%uint32(len(g.locks))]
	m.Lock()
	return m.Unlock
}

// newPacketID returns an unguessable id: 130 random bits in base32.
func newPacketID() string {
	var b [16]byte
	rand.Read(b[:])
	return "pk-" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// validPacketID checks an id's shape before it reaches a key.
func validPacketID(id string) bool {
	if len(id) != 29 || !strings.HasPrefix(id, "pk-") {
		return false
	}
	for _, c := range id[3:] {
		if (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

// applicantDigestOf keys an applicant identifier, so the ledger can link a
// person's packets without holding the identifier.
func (g *Gateway) applicantDigestOf(typ, id string) string {
	m := hmac.New(sha256.New, g.cfg.ApplicantKey)
	m.Write([]byte(typ + "\x00" + id))
	return hex.EncodeToString(m.Sum(nil))
}

// record appends one workflow entry for packet and folds it into the view.
// idem is the request's idempotency description, nil without a key; its
// scope and fingerprint go into the entry. The caller holds the packet's lock.
func (g *Gateway) record(ctx context.Context, who Principal, idem *Idempotency, p *Packet, typ, packet string, pl payload, names map[string]string) (*Packet, *ledger.Record, error) {
	var h head
	if p != nil {
		prev := p.LastSeq
		h.PacketPrev = &prev
	}
	if idem != nil && idem.Scope == "" {
		idem = nil
	}
	var fingerprint string
	if idem != nil {
		fingerprint = idem.Fingerprint()
		h.Idem = &idemPayload{Key: idem.Scope, Body: fingerprint}
	}
	pl.setHead(h)
	if err := g.Recovering(); err != nil {
		return nil, nil, err
	}
	b, err := encodePayload(pl)
	if err != nil {
		return nil, nil, err
	}
	start := time.Now()
	rec, err := g.cfg.Ledger.Append(ctx, ledger.Entry{
		Type: typ, Actor: ledger.Actor{Agency: who.Agency, Role: who.Role}, Packet: packet, Payload: b,
	})
	g.appends.Add(1)
	g.appendNanos.Add(int64(time.Since(start)))
	if err != nil {
		// The ledger refused or failed to make the entry durable: nothing
		// was recorded, and the client may retry.
		return nil, nil, fmt.Errorf("%w: ledger append: %w", ErrUnavailable, err)
	}
	// The view, its history, indexes and the idempotency record go in one
	// transaction with the watermark.
	next, err := g.state.record(rec, func(string) map[string]string { return names })
	if err != nil {
		// The entry is durable; the view catches up on restart.
		g.log.Error("packet view not updated", "packet", packet, "seq", rec.Seq, "err", err)
		if next, err = apply(p, rec, func(string) map[string]string { return names }); err != nil {
			return nil, nil, err
		}
	}
	withHistory(next)
	return next, rec, nil
}

// packetFor loads a packet and checks that who may see it: its origin, its
// destination, or an auditor.
func (g *Gateway) packetFor(who Principal, id string) (*Packet, error) {
	if !validPacketID(id) {
		return nil, fmt.Errorf("%w: packet %q", ErrNotFound, id)
	}
	if err := g.Recovering(); err != nil {
		return nil, err
	}
	p, err := g.state.get(id)
	if err != nil {
		return nil, fmt.Errorf("%w: packet %s", err, id)
	}
	if who.Role != RoleAuditor && who.Agency != p.Origin && who.Agency != p.Destination {
		return nil, fmt.Errorf("%w: packet %s belongs to other agencies", ErrForbidden, id)
	}
	return p, nil
}

// Get returns a packet for its origin, its destination or an auditor.
func (g *Gateway) Get(ctx context.Context, who Principal, id string) (*Packet, error) {
	p, err := g.packetFor(who, id)
	if err != nil {
		return nil, err
	}
	withHistory(p)
	return p.withOverdue(g.cfg.Now()), nil
}

// Applicant returns the applicant of a packet got from Get, read from the
// applicant object its stored manifest names, for its origin and
// destination only.
func (g *Gateway) Applicant(ctx context.Context, who Principal, p *Packet) (*Applicant, error) {
	if who.Agency != p.Origin && who.Agency != p.Destination {
		return nil, fmt.Errorf("%w: applicant details are for the origin and destination", ErrForbidden)
	}
	m, err := g.readManifest(ctx, who, p.ID, p.Manifest)
	if err != nil {
		return nil, err
	}
	a := m.Applicant
	if a.SHA256 == "" { // a manifest from before the applicant object
		return &Applicant{Type: a.Type, Name: a.Name, ID: a.ID}, nil
	}
	b, err := g.loadManifest(ctx, a.SHA256)
	if err != nil {
		return nil, g.objectErr(ctx, who, p.ID, "applicant", a.SHA256, err)
	}
	var r applicantRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("gateway: stored applicant %s: %w", a.SHA256, err)
	}
	return &Applicant{Type: r.Type, Name: r.Name, ID: r.ID}, nil
}

var allStatuses = []string{StatusSubmitted, StatusReceived, StatusCorrectionRequested, StatusApproved, StatusRejected, StatusLicenseIssued, StatusDelivered}

// transitions: action -> (who acts, required status, entry type).
var transitions = map[string]struct {
	side string // "destination" or "origin"
	from string
	typ  string
}{
	"receive": {"destination", StatusSubmitted, EntryReceived},
	"return":  {"destination", StatusReceived, EntryReturned},
	"approve": {"destination", StatusReceived, EntryApproved},
	"reject":  {"destination", StatusReceived, EntryRejected},
	"deliver": {"origin", StatusLicenseIssued, EntryDelivered},
}

// Act performs a workflow action on a packet: receive, return (补正),
// approve, reject (by the destination's reviewer) or deliver (by the
// origin's submitter). A return or a rejection must give a reason.
// idem is nil for a request without an Idempotency-Key.
func (g *Gateway) Act(ctx context.Context, who Principal, idem *Idempotency, id, action, reason string) (*Packet, error) {
	t, ok := transitions[action]
	if !ok {
		return nil, fieldError(ErrInvalid, "action", "unknown action %q: one of receive, return, approve, reject, deliver", action)
	}
	defer g.lock(id)()
	p, err := g.packetForStep(who, id, t.side, t.from, action)
	if err != nil {
		return nil, err
	}
	if reason, err = cleanReason(reason); err != nil {
		return nil, err
	}
	if len(reason) > g.cfg.Limits.MaxReasonBytes {
		return nil, fieldError(ErrInvalid, "reason", "longer than %d bytes", g.cfg.Limits.MaxReasonBytes)
	}
	if (action == "return" || action == "reject") && reason == "" {
		return nil, fieldError(ErrInvalid, "reason", "required for %s: the applicant must be told why", action)
	}
	var pl payload = &reasonPayload{Reason: reason}
	if action == "receive" {
		// The receipt records the manifest the receiver holds; the
		// destination can check it against the bundle it downloaded.
		pl = &receivedPayload{Manifest: p.Manifest}
	} else if action == "deliver" {
		pl = &deliveredPayload{}
	}
	next, _, err := g.record(ctx, who, idem, p, t.typ, id, pl, namesOf(p.Materials))
	if err != nil {
		return nil, err
	}
	return next.withOverdue(g.cfg.Now()), nil
}

// packetForStep loads a packet for a workflow step (named what) that who
// takes on its side, and checks the packet is in status from. The caller
// holds the packet's lock.
func (g *Gateway) packetForStep(who Principal, id, side, from, what string) (*Packet, error) {
	p, err := g.packetFor(who, id)
	if err != nil {
		return nil, err
	}
	if err := g.mayAct(who, p, side); err != nil {
		return nil, err
	}
	if p.Status != from {
		return nil, fmt.Errorf("%w: cannot %s a packet that is %s (needs %s)", ErrConflict, what, p.Status, from)
	}
	return p, nil
}

// mayAct checks that who is the packet's destination reviewer or origin submitter.
func (g *Gateway) mayAct(who Principal, p *Packet, side string) error {
	switch side {
	case "destination":
		if who.Agency != p.Destination || who.Role != RoleReviewer {
			return fmt.Errorf("%w: only the destination's reviewer may do this", ErrForbidden)
		}
	case "origin":
		if who.Agency != p.Origin || who.Role != RoleSubmitter {
			return fmt.Errorf("%w: only the origin's submitter may do this", ErrForbidden)
		}
	}
	return nil
}

// namesOf returns the file names of materials by kind.
func namesOf(refs []MaterialRef) map[string]string {
	m := make(map[string]string, len(refs))
	for _, r := range refs {
		m[r.Kind] = r.Filename
	}
	return m
}

// readManifest loads packet's stored manifest by digest for who; a missing
// or altered one is recorded as an integrity violation.
func (g *Gateway) readManifest(ctx context.Context, who Principal, packet, digest string) (*Manifest, error) {
	b, err := g.loadManifest(ctx, digest)
	if err != nil {
		return nil, g.objectErr(ctx, who, packet, "manifest", digest, err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("gateway: stored manifest %s: %w", digest, err)
	}
	return &m, nil
}

// loadManifest reads a stored manifest's (or applicant object's) bytes, verified.
func (g *Gateway) loadManifest(ctx context.Context, digest string) ([]byte, error) {
	rc, _, err := g.cfg.Store.Open(ctx, digest)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, 4<<20))
}

// storageErr translates storage errors into the gateway's.
func storageErr(err error) error {
	switch {
	case errors.Is(err, storage.ErrUnavailable):
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	case errors.Is(err, storage.ErrCorrupt):
		return fmt.Errorf("%w: %v", ErrIntegrity, err)
	case errors.Is(err, storage.ErrNotFound):
		return fmt.Errorf("%w: %v", ErrIntegrity, err) // the ledger references it
	}
	return err
}

// Stats are figures for monitoring.
type Stats struct {
	LedgerSize     int64
	Appends        int64         // ledger appends by this gateway since start
	AppendTime     time.Duration // their total latency
	CheckpointSize int64         // size of the latest signed checkpoint
	CheckpointAge  time.Duration // since it was signed
}

// Stats returns current figures for /metrics.
func (g *Gateway) Stats() Stats {
	cp, at := g.cfg.Ledger.Signed()
	return Stats{
		LedgerSize: g.cfg.Ledger.Size(), Appends: g.appends.Load(), AppendTime: time.Duration(g.appendNanos.Load()),
		CheckpointSize: cp.Size, CheckpointAge: time.Since(at),
	}
}
