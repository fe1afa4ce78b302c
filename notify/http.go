package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shoalhq/shoal/termsafe"
)

// MaxResponseBody is the most of an answer's body that is read; the rest is dropped.
const MaxResponseBody = 64 << 10

// maxErrorBody is how much of an answer's body an error message quotes, in bytes.
const maxErrorBody = 200

// statusError is a request the server answered with something other than 2xx, or one
// that could not be made at all (code 0).
type statusError struct {
	code      int
	status    string      // e.g. "401 Unauthorized"
	excerpt   string      // the start of the body, redacted and escaped
	body      []byte      // the body, up to MaxResponseBody, for sinks that read it
	permanent bool        // sending it again cannot help
	header    http.Header // the answer's headers, for retryAfter
}

func (e *statusError) Error() string {
	msg := "HTTP " + e.status
	if e.code == 0 {
		msg = e.status
	}
	if e.excerpt != "" {
		msg += ": " + e.excerpt
	}
	if e.permanent {
		msg += " (not retried)"
	}
	return msg
}

// endpoint is where one sink POSTs, with the headers every request carries.
type endpoint struct {
	client  *http.Client
	header  http.Header
	secrets []string // redacted from anything an error quotes
}

// post sends body to target and classifies the answer: nil for 2xx, a *statusError for
// any other answer, and otherwise the transport's error without the URL (a webhook URL
// may hold a key in its path or query).
func (e *endpoint) post(ctx context.Context, target string, extra http.Header, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return &statusError{status: "not sent: the URL does not make a request", permanent: true}
	}
	for k, v := range e.header {
		req.Header[k] = v
	}
	for k, v := range extra {
		req.Header[k] = v
	}
	resp, err := e.client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("POST to %s: %s", req.URL.Host, e.redact(err.Error()))
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBody))
	io.Copy(io.Discard, io.LimitReader(resp.Body, MaxResponseBody)) // let a short remainder keep the connection
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	se := &statusError{
		code:      resp.StatusCode,
		status:    termsafe.String(cut(resp.Status, 60)),
		excerpt:   termsafe.String(oneLine(cut(e.redact(string(data)), maxErrorBody))),
		body:      data,
		permanent: permanent(resp.StatusCode, resp.Header),
		header:    resp.Header,
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		se.excerpt = "redirects are not followed; is the API URL right?"
	}
	return se
}

// redact replaces every secret in s: a server that echoes the request must not put a
// token into an error, which ends up in logs.
func (e *endpoint) redact(s string) string {
	for _, secret := range e.secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "[redacted]")
		}
	}
	return s
}

// permanent says whether an answer cannot change by sending the request again: any 3xx
// (redirects are not followed) and 4xx except 408 Request Timeout, 429 Too Many Requests
// and a 403 that is GitHub's rate limit. 5xx and anything else are retried.
func permanent(code int, h http.Header) bool {
	switch {
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests:
		return false
	case code == http.StatusForbidden && rateLimited(h):
		return false
	default:
		return code >= 300 && code < 500
	}
}

// rateLimited reports whether headers say a rate limit was hit: GitHub answers its limits
// with 403 and either Retry-After (secondary limits) or X-RateLimit-Remaining: 0.
func rateLimited(h http.Header) bool {
	return h.Get("Retry-After") != "" || h.Get("X-RateLimit-Remaining") == "0"
}

// retryAfter is how long the server asks to wait: Retry-After in seconds or as an HTTP
// date, else the reset time of an exhausted rate limit (GitHub's X-RateLimit-Reset,
// GitLab's RateLimit-Reset, both Unix seconds); 0 when it does not say. It is capped at
// MaxRetryAfter so a wrong header cannot stop reports for days.
func retryAfter(h http.Header, now time.Time) time.Duration {
	var d time.Duration
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if secs, err := strconv.ParseInt(v, 10, 64); err == nil && secs > 0 {
			d = time.Duration(min(secs, int64(MaxRetryAfter/time.Second))) * time.Second
		} else if t, err := http.ParseTime(v); err == nil {
			d = t.Sub(now)
		}
	} else if h.Get("X-RateLimit-Remaining") == "0" || h.Get("RateLimit-Remaining") == "0" {
		reset := h.Get("X-RateLimit-Reset")
		if reset == "" {
			reset = h.Get("RateLimit-Reset")
		}
		if secs, err := strconv.ParseInt(reset, 10, 64); err == nil {
			d = time.Unix(secs, 0).Sub(now)
		}
	}
	return min(max(d, 0), MaxRetryAfter)
}

// cut shortens s to at most n bytes on a UTF-8 boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
