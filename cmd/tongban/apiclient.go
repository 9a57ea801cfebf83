package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// apiClient sends requests to the gateway, retrying what is safe to retry.
// Every write of one invocation carries the same Idempotency-Key, so a
// write retried after a lost answer is applied once.
type apiClient struct {
	clientFlags
	idemKey string
	retries int
	stderr  io.Writer
}

// register adds the shared client flags plus the retry flags of writes.
func (c *apiClient) register(fs *flag.FlagSet, write bool) {
	c.clientFlags.register(fs)
	fs.IntVar(&c.retries, "retries", 4, "retries after a connection error, 429 or 503")
	if write {
		fs.StringVar(&c.idemKey, "idempotency-key", "", "Idempotency-Key to send (default: a new random key per run; reuse one to retry a run safely)")
	}
}

func (c *apiClient) check(stderr io.Writer) error {
	if err := c.clientFlags.check(); err != nil {
		return err
	}
	c.stderr = stderr
	if c.retries < 0 {
		return usageError("--retries must not be negative")
	}
	if c.idemKey == "" {
		var b [16]byte
		rand.Read(b[:])
		c.idemKey = hex.EncodeToString(b[:])
	}
	return nil
}

// body makes a fresh request body for each attempt, with its content type.
type body func() (io.Reader, string, error)

// jsonBody is a body of one JSON value.
func jsonBody(v any) body {
	return func() (io.Reader, string, error) {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, "", err
		}
		return bytes.NewReader(b), "application/json", nil
	}
}

// Back-off between attempts: doubling from backoffBase, at most backoffMax;
// a Retry-After longer than retryAfterMax is cut to it.
const (
	backoffBase   = 500 * time.Millisecond
	backoffMax    = 8 * time.Second
	retryAfterMax = time.Minute
)

// do sends a request; write marks a POST that carries the invocation's
// Idempotency-Key. It retries connection errors and 429/503 answers with
// back-off, honouring Retry-After. The caller closes the response body.
func (c *apiClient) do(ctx context.Context, method, path string, mk body, write bool) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		var r io.Reader
		var ctype string
		if mk != nil {
			var err error
			if r, ctype, err = mk(); err != nil {
				return nil, err
			}
		}
		req, err := c.request(ctx, method, path, r)
		if err != nil {
			return nil, err
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		if write {
			req.Header.Set("Idempotency-Key", c.idemKey)
		}
		resp, err := http.DefaultClient.Do(req)
		wait := backoff(attempt)
		switch {
		case err != nil && ctx.Err() != nil:
			return nil, ctx.Err()
		case err != nil:
			if attempt >= c.retries {
				return nil, c.giveUp(err, write)
			}
			fmt.Fprintf(c.stderr, "tongban: %v; retrying in %v\n", err, wait)
		case resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests:
			if attempt >= c.retries {
				return resp, nil
			}
			if d, ok := retryAfter(resp.Header.Get("Retry-After")); ok {
				wait = d
			}
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
			fmt.Fprintf(c.stderr, "tongban: server answered %s; retrying in %v\n", resp.Status, wait)
		default:
			return resp, nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// giveUp says how to retry a write later without applying it twice.
func (c *apiClient) giveUp(err error, write bool) error {
	if !write {
		return err
	}
	return fmt.Errorf("%w\nthe server may have applied it: run again with --idempotency-key %s to retry safely", err, c.idemKey)
}

func backoff(attempt int) time.Duration {
	d := backoffBase << min(attempt, 10)
	return min(d, backoffMax)
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		d = time.Duration(s) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = max(0, time.Until(t))
	} else {
		return 0, false
	}
	return min(d, retryAfterMax), true
}

// get GETs path and returns a 200 answer, whose body the caller closes;
// any other answer is returned as its error.
func (c *apiClient) get(ctx context.Context, path string) (*http.Response, error) {
	resp, err := c.do(ctx, "GET", path, nil, false)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, apiError(resp)
	}
	return resp, nil
}

// getJSON GETs path and decodes a 200 answer into v.
func (c *apiClient) getJSON(ctx context.Context, path string, v any) error {
	resp, err := c.get(ctx, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return decodeJSON(resp, v)
}

// postJSON sends a write and decodes the answer of status want into v.
func (c *apiClient) post(ctx context.Context, path string, mk body, want int, v any) error {
	resp, err := c.do(ctx, "POST", path, mk, true)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		return apiError(resp)
	}
	return decodeJSON(resp, v)
}

func decodeJSON(resp *http.Response, v any) error {
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return errors.New("the server's answer is not the expected JSON: " + err.Error())
	}
	return nil
}
