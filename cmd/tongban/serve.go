package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"tongban/api"
	"tongban/gateway"
	"tongban/gateway/workday"
	"tongban/internal/durable"
	"tongban/ledger"
	"tongban/ledger/cosign"
	"tongban/storage"
	fsstore "tongban/storage/fs"
	"tongban/storage/s3"
)

// fileConfig is the --config file of a real deployment (JSON).
type fileConfig struct {
	Agencies    []gateway.Agency             `json:"agencies"`
	Credentials []api.Credential             `json:"credentials"`
	Catalog     *gateway.Catalog             `json:"catalog,omitempty"`      // default: the built-in catalogue
	Origin      string                       `json:"origin,omitempty"`       // the log's name in checkpoints
	Storage     *s3Config                    `json:"storage,omitempty"`      // S3; default: files under --data
	ClientCerts map[string]gateway.Principal `json:"client_certs,omitempty"` // TLS client certificate CN -> principal
	Limits      gateway.Limits               `json:"limits"`
	MaxUpload   int64                        `json:"max_upload_bytes,omitempty"`
	// CryptoProfile is "standard" (default) or "gm": SM3 digests and SM2
	// checkpoint signatures as well (docs/gm.md).
	CryptoProfile string `json:"crypto_profile,omitempty"`
	// CalendarOverrides set single days as working days or days off, for
	// years the built-in holiday table does not know and local arrangements.
	CalendarOverrides []workday.Override `json:"calendar_overrides,omitempty"`
	calendar          *workday.Calendar  // built from CalendarOverrides by loadConfig
	// Witnesses cosign the log's checkpoints; WitnessQuorum of them must
	// (default: all). WitnessGrace is how long writes go on while the
	// quorum is out of reach (a Go duration, default "10m").
	Witnesses     []cosign.Witness `json:"witnesses,omitempty"`
	WitnessQuorum *int             `json:"witness_quorum,omitempty"`
	WitnessGrace  string           `json:"witness_grace,omitempty"`
	// PublicTiles serves the tiles API (/v1/ledger/tlog/) without a token.
	PublicTiles bool `json:"public_tiles,omitempty"`
}

type s3Config struct {
	Endpoint  string `json:"endpoint"`
	AccessKey string `json:"access_key"`
	SecretKey string `json:"secret_key"`
	Bucket    string `json:"bucket"`
	Secure    bool   `json:"secure"`
	Region    string `json:"region"`
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("serve", flag.ContinueOnError)
	addr := fset.String("addr", "127.0.0.1:8080", "listen address")
	data := fset.String("data", "data", "data directory: ledger, packet views, local objects, keys")
	config := fset.String("config", "", "JSON config file: agencies, credentials (token hashes), catalogue, storage; default: the demo set-up")
	logFormat := fset.String("log", "auto", "log format: json, text or auto (text on a terminal)")
	tlsCert := fset.String("tls-cert", "", "TLS certificate (PEM); with --tls-key, serve HTTPS")
	tlsKey := fset.String("tls-key", "", "TLS private key (PEM)")
	clientCA := fset.String("client-ca", "", "CA (PEM) for optional client certificates, mapped to agencies by the config's client_certs")
	gcEvery := fset.Duration("gc-interval", time.Hour, "how often unreferenced objects are collected (0: never)")
	gcGrace := fset.Duration("gc-grace", 24*time.Hour, "how old an unreferenced object must be to be collected")
	rateLimit := fset.Float64("rate", 200, "requests per second per principal, bursts of twice that (0: unlimited)")
	maxUploads := fset.Int("max-uploads", 64, "uploads in progress at once; beyond, 503 with Retry-After (negative: no cap)")
	maxUploadsEach := fset.Int("max-uploads-per-principal", 16, "uploads in progress at once per agency and role (negative: no cap)")
	minRate := fset.Int64("min-upload-rate", 4<<10, "slowest request body accepted, bytes a second, after a 10 s grace (negative: none)")
	var witnessFlags listFlag
	fset.Var(&witnessFlags, "witness", "a witness as 'NAME URL VKEY' (repeatable; added to the config's)")
	quorum := fset.Int("witness-quorum", -1, "how many witnesses must cosign (default: the config's, else all)")
	grace := fset.Duration("witness-grace", 0, "how long writes go on while the quorum is out of reach (default: the config's, else 10m)")
	publicTiles := fset.Bool("public-tiles", false, "serve the tiles API (/v1/ledger/tlog/) without a token")
	profile := fset.String("crypto-profile", "", "standard or gm (SM3 digests and SM2 signatures as well); default: the config's crypto_profile, else standard")
	pos, err := parseArgs(fset, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("serve takes no arguments, got %q", pos)
	}
	if (*tlsCert == "") != (*tlsKey == "") || (*clientCA != "" && *tlsCert == "") {
		return usageError("--tls-cert and --tls-key go together, and --client-ca needs them")
	}
	log := newLogger(stderr, *logFormat)
	slog.SetDefault(log)
	cfg, demo, err := loadConfig(*config)
	if err != nil {
		return err
	}
	if *profile != "" {
		cfg.CryptoProfile = *profile
	}
	if cfg.CryptoProfile, err = checkProfile(cfg.CryptoProfile); err != nil {
		return err
	}
	if err := os.MkdirAll(*data, 0o700); err != nil {
		return err
	}
	if demo {
		if cfg.Credentials, err = demoCredentials(*data, cfg.Agencies); err != nil {
			return err
		}
	}
	for _, f := range witnessFlags {
		w, err := cosign.ParseWitness(f)
		if err != nil {
			return usageError("--witness: %v", err)
		}
		cfg.Witnesses = append(cfg.Witnesses, w)
	}
	if *quorum >= 0 {
		cfg.WitnessQuorum = quorum
	}
	if *grace > 0 {
		cfg.WitnessGrace = grace.String()
	}
	witnesses, err := openWitnesses(ctx, *data, cfg, log)
	if err != nil {
		return err
	}
	g, l, closeAll, err := openGateway(ctx, *data, cfg, log, openOptions{background: true, witnesses: witnesses})
	if err != nil {
		return err
	}
	defer closeAll()
	if witnesses != nil {
		witnesses.SetLog(l)
	}
	warnUncoveredYears(log, cfg.calendar, time.Now())
	h, err := api.New(api.Config{
		Gateway: g, Credentials: cfg.Credentials, MaxUploadBytes: cfg.MaxUpload, Logger: log,
		RateLimit: *rateLimit, ClientCerts: cfg.ClientCerts,
		MaxUploads: *maxUploads, MaxUploadsPerPrincipal: *maxUploadsEach, MinUploadRate: *minRate,
		Ledger: l, PublicTiles: cfg.PublicTiles || *publicTiles, Witnesses: witnesses,
	})
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second, // slow headers (slowloris); bodies have their own idle deadline
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if *clientCA != "" {
		pem, err := os.ReadFile(*clientCA)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("--client-ca %s: no certificate found", *clientCA)
		}
		srv.TLSConfig = &tls.Config{ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	scheme := "http"
	if *tlsCert != "" {
		scheme = "https"
	}
	log.Info("tongban serving", "addr", ln.Addr().String(), "scheme", scheme, "data", *data, "demo", demo, "ledger_size", l.Size(), "log_key", l.VerifierKey())
	if demo {
		fmt.Fprintf(stdout, "tongban: listening on %s://%s; demo tokens in %s\n", scheme, ln.Addr(), filepath.Join(*data, "demo-tokens.json"))
	}
	// Background work stops before the gateway and ledger close (the
	// deferred closeAll runs after this).
	bg, stopBG := context.WithCancel(ctx)
	var background sync.WaitGroup
	defer background.Wait()
	defer stopBG()
	if *gcEvery > 0 {
		background.Go(func() { g.RunGC(bg, *gcEvery, *gcGrace) })
	}
	if witnesses != nil {
		background.Go(func() { witnesses.Run(bg) })
	}
	errc := make(chan error, 1)
	go func() {
		if *tlsCert != "" {
			errc <- srv.ServeTLS(ln, *tlsCert, *tlsKey)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Stop taking requests, let running ones finish, then close the
	// gateway (views) and the ledger (final checkpoint), in that order.
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown", "err", err)
	}
	return nil
}

// warnUncoveredYears warns when the holidays of this year, or from
// November (when the State Council publishes them) of next year, are
// unknown: deadlines there would count weekends only.
func warnUncoveredYears(log *slog.Logger, cal *workday.Calendar, now time.Time) {
	now = now.In(workday.Shanghai)
	years := []int{now.Year()}
	if now.Month() >= time.November {
		years = append(years, now.Year()+1)
	}
	for _, y := range years {
		if !cal.Covers(y) {
			log.Warn("public holidays unknown: working-day deadlines skip weekends only; add the year's arrangement to calendar_overrides", "year", y)
		}
	}
}

// loadConfig reads --config, or returns the demo set-up (without its
// credentials: see demoCredentials) when there is none.
func loadConfig(path string) (fileConfig, bool, error) {
	cfg := fileConfig{Agencies: gateway.DemoAgencies(), Catalog: gateway.DefaultCatalog()}
	if path == "" {
		cfg.calendar, _ = workday.New(nil) // no overrides: cannot fail
		return cfg, true, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return cfg, false, fmt.Errorf("config: %w", err)
	}
	cfg = fileConfig{}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return cfg, false, fmt.Errorf("config %s: %w", path, err)
	}
	if cfg.Catalog == nil {
		cfg.Catalog = gateway.DefaultCatalog()
	}
	if len(cfg.Agencies) == 0 || len(cfg.Credentials) == 0 {
		return cfg, false, fmt.Errorf("config %s: agencies and credentials are required", path)
	}
	if cfg.calendar, err = workday.New(cfg.CalendarOverrides); err != nil {
		return cfg, false, fmt.Errorf("config %s: calendar_overrides: %w", path, err)
	}
	if _, err := checkProfile(cfg.CryptoProfile); err != nil {
		return cfg, false, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, false, nil
}

// openGateway opens the object store, the ledger and the gateway over data;
// with background, the views catch up with the ledger after it returns.
// closeAll closes them in the right order: gateway, then ledger.
func openGateway(ctx context.Context, data string, cfg fileConfig, log *slog.Logger, o openOptions) (g *gateway.Gateway, l *ledger.Ledger, closeAll func(), err error) {
	store, err := openStore(ctx, data, cfg.Storage)
	if err != nil {
		return nil, nil, nil, err
	}
	lo := ledger.Options{Dir: ledgerDir(data), Origin: cfg.Origin, Logger: log, BadgerOptions: o.badger}
	sm2Key, err := gmLedgerOptions(data, cfg, &lo) // gm profile
	if err != nil {
		return nil, nil, nil, err
	}
	l, err = ledger.Open(lo)
	if err != nil {
		return nil, nil, nil, err
	}
	if sm2Key != "" {
		log.Info("crypto profile gm: SM3 digests, checkpoints also signed with SM2", "sm2_verifier_key", sm2Key)
	}
	key, err := secretFile(filepath.Join(data, "applicant.key"))
	if err != nil {
		l.Close()
		return nil, nil, nil, err
	}
	g, err = gateway.New(ctx, gateway.Config{
		Catalog: cfg.Catalog, Agencies: cfg.Agencies, Store: store, Ledger: l,
		StateDir: filepath.Join(data, "state"), ApplicantKey: key, Limits: cfg.Limits, Logger: log,
		Calendar: cfg.calendar, RecoverInBackground: o.background, SM3: cfg.CryptoProfile == profileGM,
		Cosigned: cosignedFor(o.witnesses),
	})
	if err != nil {
		l.Close()
		return nil, nil, nil, err
	}
	return g, l, func() {
		if err := g.Close(); err != nil {
			log.Error("close gateway", "err", err)
		}
		if err := l.Close(); err != nil {
			log.Error("close ledger", "err", err)
		}
	}, nil
}

// openOptions are openGateway's choices beyond the data and its config.
type openOptions struct {
	background bool             // the views catch up with the ledger after openGateway returns
	witnesses  *cosign.Gatherer // bundles carry the witnesses' cosigned checkpoint
	badger     func(badger.Options) badger.Options
}

// stoppedConfig loads the config of the gateway whose data directory is
// data, for a command that works on it while it is stopped. A mistyped
// --data must not grow a fresh, empty gateway: it needs a ledger there.
func stoppedConfig(data, config string) (fileConfig, error) {
	cfg, _, err := loadConfig(config)
	if err != nil {
		return cfg, err
	}
	if _, err := os.Stat(filepath.Join(ledgerDir(data), "db")); err != nil {
		return cfg, fmt.Errorf("no ledger in %s: %w", data, err)
	}
	return cfg, nil
}

// runGC collects unreferenced objects of a stopped gateway.
func runGC(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("gc", flag.ContinueOnError)
	data := fset.String("data", "data", "the gateway's data directory")
	config := fset.String("config", "", "the gateway's config file, for its storage settings")
	grace := fset.Duration("grace", 24*time.Hour, "keep unreferenced objects younger than this")
	dry := fset.Bool("dry-run", false, "only count what would be deleted")
	full := fset.Bool("full", false, "list the whole store, not only what was stored since the last collection")
	if pos, err := parseArgs(fset, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usageError("gc takes no arguments")
	}
	log := newLogger(stderr, "auto")
	cfg, err := stoppedConfig(*data, *config)
	if err != nil {
		return err
	}
	g, _, closeAll, err := openGateway(ctx, *data, cfg, log, openOptions{})
	if errors.Is(err, ledger.ErrLocked) {
		return fmt.Errorf("%w: stop the gateway first (it collects garbage by itself every --gc-interval)", err)
	}
	if err != nil {
		return err
	}
	defer closeAll()
	collect := g.CollectGarbage
	if *full {
		collect = g.CollectAllGarbage
	}
	rep, err := collect(ctx, *grace, *dry)
	if err != nil {
		return err
	}
	verb := "deleted"
	if *dry {
		verb = "would delete"
	}
	fmt.Fprintf(stdout, "%d objects, %d referenced by the ledger, %d too young; %s %d (%d bytes)\n",
		rep.Objects, rep.Referenced, rep.Young, verb, rep.Deleted, rep.Bytes)
	return nil
}

func newLogger(w io.Writer, format string) *slog.Logger {
	if format == "json" || (format == "auto" && !isTerminal(w)) {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

// openStore picks S3 when TONGBAN_S3_ENDPOINT (or the config) names it,
// local files under data otherwise.
func openStore(ctx context.Context, data string, c *s3Config) (storage.Store, error) {
	if ep := os.Getenv("TONGBAN_S3_ENDPOINT"); ep != "" {
		secure, _ := strconv.ParseBool(os.Getenv("TONGBAN_S3_SECURE"))
		c = &s3Config{
			Endpoint: ep, AccessKey: os.Getenv("TONGBAN_S3_ACCESS_KEY"), SecretKey: os.Getenv("TONGBAN_S3_SECRET_KEY"),
			Bucket: os.Getenv("TONGBAN_S3_BUCKET"), Secure: secure,
		}
		if c.Bucket == "" {
			c.Bucket = "tongban"
		}
	}
	if c == nil {
		return fsstore.Open(filepath.Join(data, "objects"))
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := s3.Open(ctx, s3.Config{Endpoint: c.Endpoint, AccessKey: c.AccessKey, SecretKey: c.SecretKey, Bucket: c.Bucket, Secure: c.Secure, Region: c.Region})
	if err != nil {
		return nil, fmt.Errorf("S3 at %s: %w", c.Endpoint, err)
	}
	return st, nil
}

// secretFile returns the 32 random bytes in path, creating them (0600) once.
func secretFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(k) < 16 {
			return nil, fmt.Errorf("%s: not a hex key of at least 16 bytes", path)
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	k := make([]byte, 32)
	rand.Read(k)
	if err := durable.WriteFile(path, []byte(hex.EncodeToString(k)+"\n"), 0o600); err != nil {
		return nil, err
	}
	return k, nil
}

// demoCredentials returns the demo principals' credentials, minting their
// tokens on first start and writing them to data/demo-tokens.json (0600)
// as {"<agency>:<role>": "<token>"}. Later starts reuse them.
func demoCredentials(data string, agencies []gateway.Agency) ([]api.Credential, error) {
	path := filepath.Join(data, "demo-tokens.json")
	tokens := map[string]string{}
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &tokens); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var creds []api.Credential
	changed := false
	for _, a := range agencies {
		for _, role := range a.Roles {
			k := a.ID + ":" + role
			if tokens[k] == "" {
				tokens[k], _ = api.NewToken()
				changed = true
			}
			creds = append(creds, api.Credential{Agency: a.ID, Role: role, TokenSHA256: api.HashToken(tokens[k])})
		}
	}
	if changed {
		b, _ := json.MarshalIndent(tokens, "", "  ")
		if err := durable.WriteFile(path, append(b, '\n'), 0o600); err != nil {
			return nil, err
		}
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return nil, err
	}
	return creds, nil
}

// openWitnesses sets up the gathering of cosignatures when witnesses are
// configured (nil otherwise), and before the ledger is opened for writing
// checks its tree against what the witnesses cosigned: a rewritten or
// rolled-back ledger is refused before it can sign a second history.
func openWitnesses(ctx context.Context, data string, cfg fileConfig, log *slog.Logger) (*cosign.Gatherer, error) {
	if len(cfg.Witnesses) == 0 {
		if cfg.WitnessQuorum != nil && *cfg.WitnessQuorum > 0 {
			return nil, fmt.Errorf("a witness quorum of %d without witnesses", *cfg.WitnessQuorum)
		}
		return nil, nil
	}
	q := len(cfg.Witnesses)
	if cfg.WitnessQuorum != nil {
		q = *cfg.WitnessQuorum
	}
	var grace time.Duration
	if cfg.WitnessGrace != "" {
		var err error
		if grace, err = time.ParseDuration(cfg.WitnessGrace); err != nil || grace <= 0 {
			return nil, fmt.Errorf("witness_grace %q: not a positive duration", cfg.WitnessGrace)
		}
	}
	w, err := cosign.Open(cosign.Options{Witnesses: cfg.Witnesses, Quorum: q, Dir: data, Grace: grace, Logger: log})
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(ledgerDir(data), "db")); err != nil {
		return w, nil // a new ledger: nothing cosigned yet
	}
	// Read-only: closing it signs nothing, whatever the check finds.
	ro, err := ledger.Open(ledger.Options{Dir: ledgerDir(data), Origin: cfg.Origin, ReadOnly: true, Logger: log})
	if err != nil {
		return nil, err
	}
	defer ro.Close()
	if err := w.CheckStart(ctx, ro); err != nil {
		return nil, err
	}
	log.Info("ledger consistent with its witnesses", "size", ro.Size(), "witnesses", len(cfg.Witnesses), "quorum", q)
	return w, nil
}

// cosignedFor lets bundles carry the newest cosigned checkpoint covering
// their tree, waiting for the witnesses to cosign it if need be.
func cosignedFor(w *cosign.Gatherer) func(context.Context, int64) ([]byte, []ledger.Hash, error) {
	if w == nil {
		return nil
	}
	return func(ctx context.Context, size int64) ([]byte, []ledger.Hash, error) {
		for {
			w.Checkpoint() // wakes the witnesses for a new tree
			signed, proof, err := w.CosignedProof(size)
			if err == nil {
				return signed, proof, nil
			}
			select {
			case <-ctx.Done():
				return nil, nil, fmt.Errorf("%w (waited: %v)", err, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}
