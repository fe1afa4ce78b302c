package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// Webhook headers. The signature follows GitHub's webhook convention:
//
//	X-Shoal-Signature-256: sha256=<lowercase hex HMAC-SHA256(key=secret, message=raw body)>
const (
	HeaderEvent     = "X-Shoal-Event"         // always EventCommitStatus
	HeaderDelivery  = "X-Shoal-Delivery"      // the Report's ID, the same on every retry
	HeaderSignature = "X-Shoal-Signature-256" // "sha256=" and the hex HMAC of the body
)

// EventCommitStatus is the X-Shoal-Event of a report.
const EventCommitStatus = "commit-status"

// Bounds of a webhook body: a rejected commit may have thousands of errors and a commit
// may touch thousands of Deployments, but a receiver needs the first few.
const (
	MaxWebhookErrors    = 20   // errors carried; the first ones
	MaxWebhookWorkloads = 1000 // workloads carried; the first ones
	MaxWebhookText      = 1024 // characters of the description, an error, or a workload's reason
)

// payload is the webhook's JSON body.
type payload struct {
	ID          string           `json:"id"`
	Commit      string           `json:"commit"`
	State       State            `json:"state"`
	Description string           `json:"description"`
	Errors      []string         `json:"errors"`
	Workloads   []WorkloadResult `json:"workloads"`
	Node        string           `json:"node"`
	Time        time.Time        `json:"time"`
	Link        string           `json:"link"`
}

// webhook POSTs each report as signed JSON to a URL.
type webhook struct {
	ep     endpoint
	url    string
	secret []byte
	link   string
}

func newWebhook(cfg Config, c *http.Client, link string) (*webhook, error) {
	u, err := checkEndpoint("WebhookURL", cfg.WebhookURL, "", true)
	if err != nil {
		return nil, err
	}
	if err := checkCredential("WebhookSecret", cfg.WebhookSecret); err != nil {
		return nil, err
	}
	return &webhook{
		ep: endpoint{client: c, secrets: []string{cfg.WebhookSecret}, header: http.Header{
			"Content-Type": {"application/json"},
			"User-Agent":   {"shoal"},
			HeaderEvent:    {EventCommitStatus},
		}},
		url:    u.String(),
		secret: []byte(cfg.WebhookSecret),
		link:   link,
	}, nil
}

func (w *webhook) Name() string { return "webhook" }

func (w *webhook) Send(ctx context.Context, r Report) error {
	body := w.body(r)
	return w.ep.post(ctx, w.url, http.Header{
		HeaderDelivery:  {r.ID()},
		HeaderSignature: {"sha256=" + sign(w.secret, body)},
	}, body)
}

// body is r as JSON within the bounds above; lists are never null.
func (w *webhook) body(r Report) []byte {
	p := payload{
		ID:          r.ID(),
		Commit:      r.Commit,
		State:       r.State,
		Description: truncate(oneLine(r.Description), MaxWebhookText),
		Errors:      []string{},
		Workloads:   []WorkloadResult{},
		Node:        truncate(r.Node, MaxWebhookText),
		Time:        r.Time.UTC(),
		Link:        linkFor(w.link, r.Commit),
	}
	for _, e := range r.Errors[:min(len(r.Errors), MaxWebhookErrors)] {
		p.Errors = append(p.Errors, truncate(e, MaxWebhookText))
	}
	for _, wr := range r.Workloads[:min(len(r.Workloads), MaxWebhookWorkloads)] {
		for _, f := range []*string{&wr.Namespace, &wr.Name, &wr.Outcome, &wr.Reason} {
			*f = truncate(*f, MaxWebhookText)
		}
		p.Workloads = append(p.Workloads, wr)
	}
	body, _ := json.Marshal(p) // strings and a time only: it cannot fail
	return body
}

// sign is the lowercase hex HMAC-SHA256 of body keyed with secret.
func sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// VerifySignature reports whether header, an X-Shoal-Signature-256 value, is
// "sha256=" and the hex HMAC-SHA256 of body keyed with secret. It compares in constant
// time and is false for an empty secret, so a receiver that lost its secret accepts
// nothing. body must be the raw bytes received, before any JSON decoding.
func VerifySignature(secret, body []byte, header string) bool {
	hexSum, ok := strings.CutPrefix(header, "sha256=")
	if !ok || len(secret) == 0 {
		return false
	}
	got, err := hex.DecodeString(hexSum)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}
