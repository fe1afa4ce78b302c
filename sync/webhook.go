package sync

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
)

// ErrNoSecret is returned by NewWebhook without a secret: an unsigned webhook would let
// anyone on the network make every daemon hit the Git host.
var ErrNoSecret = errors.New("sync: webhook needs a secret")

// MaxWebhookBody is the largest request body a Webhook reads; larger ones get 413.
// GitHub caps its payloads at 25 MiB but push events for manifest repos are small.
const MaxWebhookBody = 1 << 20

// Signature headers a Webhook accepts, checked in this order; the first one present
// decides, and a request with none of them is refused.
const (
	// HeaderGitHub carries "sha256=" and the hex HMAC-SHA256 of the body keyed with the
	// secret (GitHub, Gitea, Forgejo).
	HeaderGitHub = "X-Hub-Signature-256"
	// HeaderGitLab carries the secret itself (GitLab's "secret token").
	HeaderGitLab = "X-Gitlab-Token"
	// HeaderShoal is Shoal's generic form for any other sender, the same as GitHub's:
	//
	//	X-Shoal-Signature: sha256=<lowercase hex HMAC-SHA256(key=secret, message=raw body)>
	//
	// e.g. sig=$(printf %s "$body" | openssl dgst -sha256 -hmac "$secret" -r | cut -d' ' -f1).
	HeaderShoal = "X-Shoal-Signature"
)

// Triggerer is what a Webhook pokes; *Poller is one.
type Triggerer interface {
	// Trigger asks for a check soon and returns at once.
	Trigger()
}

// Webhook is an http.Handler that asks for a check when a signed POST arrives, from
// GitHub, GitLab or anything that can sign with HeaderShoal. It answers 202 once the
// check is asked for (not done), 401 for a missing or wrong signature, 405 for other
// methods and 413 for bodies over MaxWebhookBody. Any verified request triggers a
// check, whatever its event: a check with nothing new costs one ls-remote.
type Webhook struct {
	secret []byte
	target Triggerer
	log    *slog.Logger
}

// NewWebhook returns a Webhook verifying with secret and triggering target. A nil log
// means slog.Default().
func NewWebhook(secret []byte, target Triggerer, log *slog.Logger) (*Webhook, error) {
	if len(secret) == 0 {
		return nil, ErrNoSecret
	}
	if target == nil {
		return nil, errors.New("sync: webhook needs something to trigger")
	}
	if log == nil {
		log = slog.Default()
	}
	return &Webhook{secret: append([]byte(nil), secret...), target: target, log: log}, nil
}

// ServeHTTP implements http.Handler.
func (h *Webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "only POST", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxWebhookBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.log.Warn("sync: webhook body too large", "remote", r.RemoteAddr, "limit", MaxWebhookBody)
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return
	}
	if err := h.verify(r.Header, body); err != nil {
		h.log.Warn("sync: webhook refused", "remote", r.RemoteAddr, "reason", err)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	h.target.Trigger()
	w.WriteHeader(http.StatusAccepted)
}

// verify checks the first signature header present against the secret.
func (h *Webhook) verify(header http.Header, body []byte) error {
	switch {
	case header.Get(HeaderGitHub) != "":
		return h.verifyHMAC(HeaderGitHub, header.Get(HeaderGitHub), body)
	case header.Get(HeaderGitLab) != "":
		// Compare digests rather than the strings so that neither the time taken nor
		// an early length mismatch says anything about the secret.
		got, want := sha256.Sum256([]byte(header.Get(HeaderGitLab))), sha256.Sum256(h.secret)
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			return fmt.Errorf("%s does not match", HeaderGitLab)
		}
		return nil
	case header.Get(HeaderShoal) != "":
		return h.verifyHMAC(HeaderShoal, header.Get(HeaderShoal), body)
	default:
		return fmt.Errorf("no %s, %s or %s header", HeaderGitHub, HeaderGitLab, HeaderShoal)
	}
}

func (h *Webhook) verifyHMAC(name, value string, body []byte) error {
	hexSum, ok := strings.CutPrefix(value, "sha256=")
	if !ok {
		return fmt.Errorf("%s: want sha256=<hex>", name)
	}
	got, err := hex.DecodeString(hexSum)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	mac := hmac.New(sha256.New, h.secret)
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return fmt.Errorf("%s does not match the body", name)
	}
	return nil
}
