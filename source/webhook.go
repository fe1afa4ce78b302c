package source

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
	"sync"
	"sync/atomic"
)

// ErrNoSecret is returned by NewWebhook without a secret: an unsigned webhook would let
// anyone on the network make every daemon hit the Git host.
var ErrNoSecret = errors.New("source: webhook needs a secret")

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

// Delivery ID headers, checked in this order; the first one present names the delivery.
// A Git host sends the same ID again when it redelivers (a retry, or a person pressing
// "Redeliver"), so a Webhook that saw the ID already ignores the request.
const (
	// HeaderGitHubDelivery is GitHub's delivery GUID; Gitea and Forgejo send it too.
	HeaderGitHubDelivery = "X-GitHub-Delivery"
	// HeaderGiteaDelivery is Gitea's and Forgejo's own name for it.
	HeaderGiteaDelivery = "X-Gitea-Delivery"
	// HeaderIdempotencyKey is GitLab's (17.4 and later), kept across retries, and the
	// IETF draft's generic header for any other sender.
	HeaderIdempotencyKey = "Idempotency-Key"
)

// RecentDeliveries is how many delivery IDs a Webhook remembers; the oldest is
// forgotten first. A host redelivers within minutes, far fewer pushes than this.
const RecentDeliveries = 1024

// Triggerer is what a Webhook pokes; *Poller is one.
type Triggerer interface {
	// Trigger asks for a check soon and returns at once. However many triggers come,
	// a Triggerer should run at most one check at a time and keep at most one more
	// pending (*Poller does), so that a burst of deliveries costs two checks.
	Trigger()
}

// WebhookStats counts a Webhook's requests by outcome since it was made.
type WebhookStats struct {
	// Accepted requests were verified and triggered a check.
	Accepted uint64
	// Repeated requests were verified but carried a delivery ID seen before.
	Repeated uint64
	// Refused requests had a missing or wrong signature, a body over the limit or
	// another method than POST.
	Refused uint64
}

// Webhook is an http.Handler that asks for a check when a signed POST arrives, from
// GitHub, GitLab or anything that can sign with HeaderShoal. It answers 202 once the
// check is asked for (not done), 200 without asking for one when the delivery ID was
// seen before, 401 for a missing or wrong signature, 405 for other methods and 413 for
// bodies over MaxWebhookBody. Any verified request triggers a check, whatever its event:
// a check with nothing new costs one ls-remote.
//
// The signature covers the body only, not the delivery ID, so repeated IDs catch
// redeliveries, not an eavesdropper replaying a captured request under new IDs; such a
// replay costs what a delivery does, a check, and the Triggerer coalesces those. Serve
// the webhook over TLS so that requests cannot be captured.
type Webhook struct {
	secret []byte
	target Triggerer
	log    *slog.Logger
	seen   recentIDs

	accepted, repeated, refused atomic.Uint64
}

// NewWebhook returns a Webhook verifying with secret and triggering target. A nil log
// means slog.Default().
func NewWebhook(secret []byte, target Triggerer, log *slog.Logger) (*Webhook, error) {
	if len(secret) == 0 {
		return nil, ErrNoSecret
	}
	if target == nil {
		return nil, errors.New("source: webhook needs something to trigger")
	}
	if log == nil {
		log = slog.Default()
	}
	return &Webhook{secret: append([]byte(nil), secret...), target: target, log: log, seen: newRecentIDs(RecentDeliveries)}, nil
}

// Stats returns the counts of requests so far.
func (h *Webhook) Stats() WebhookStats {
	return WebhookStats{Accepted: h.accepted.Load(), Repeated: h.repeated.Load(), Refused: h.refused.Load()}
}

// ServeHTTP implements http.Handler.
func (h *Webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		h.refused.Add(1)
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "only POST", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxWebhookBody))
	if err != nil {
		h.refused.Add(1)
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.log.Warn("source: webhook body too large", "remote", r.RemoteAddr, "limit", MaxWebhookBody)
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return
	}
	if err := h.verify(r.Header, body); err != nil {
		h.refused.Add(1)
		h.log.Warn("source: webhook refused", "remote", r.RemoteAddr, "reason", err)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	// Only a verified request may add its ID: otherwise anyone could send unsigned
	// requests with the IDs of deliveries to come and have them ignored.
	if id := deliveryID(r.Header); id != "" && !h.seen.add(id) {
		h.repeated.Add(1)
		h.log.Info("source: webhook delivery seen before; ignored", "remote", r.RemoteAddr, "delivery", truncate(id, 80))
		io.WriteString(w, "delivery seen before; ignored\n")
		return
	}
	h.accepted.Add(1)
	h.target.Trigger()
	w.WriteHeader(http.StatusAccepted)
}

// deliveryID is the first delivery ID header present, or "".
func deliveryID(header http.Header) string {
	for _, name := range []string{HeaderGitHubDelivery, HeaderGiteaDelivery, HeaderIdempotencyKey} {
		if id := header.Get(name); id != "" {
			return id
		}
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// recentIDs remembers the last n IDs added, by digest so that long IDs cost no more
// than short ones. Safe for concurrent use.
type recentIDs struct {
	mu    sync.Mutex
	set   map[[sha256.Size]byte]struct{}
	order [][sha256.Size]byte // a ring: next is the oldest once it is full
	next  int
}

func newRecentIDs(n int) recentIDs {
	return recentIDs{set: make(map[[sha256.Size]byte]struct{}, n), order: make([][sha256.Size]byte, 0, n)}
}

// add remembers id and reports whether it was new.
func (r *recentIDs) add(id string) bool {
	sum := sha256.Sum256([]byte(id))
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.set[sum]; ok {
		return false
	}
	if len(r.order) < cap(r.order) {
		r.order = append(r.order, sum)
	} else {
		delete(r.set, r.order[r.next])
		r.order[r.next] = sum
		r.next = (r.next + 1) % len(r.order)
	}
	r.set[sum] = struct{}{}
	return true
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
