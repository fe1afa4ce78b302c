package executor

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ProbeKind says what a probe's verdict decides.
type ProbeKind string

// Probe kinds, as in Kubernetes.
const (
	// ProbeLiveness restarts the container when it fails.
	ProbeLiveness ProbeKind = "liveness"
	// ProbeReadiness keeps the instance out of DNS while it fails.
	ProbeReadiness ProbeKind = "readiness"
	// ProbeStartup holds the container's other probes back until it has succeeded once,
	// and restarts the container when it fails.
	ProbeStartup ProbeKind = "startup"
)

// ProbeSpec is one probe of a container, resolved: ports are numbers and timings durations.
type ProbeSpec struct {
	Kind ProbeKind
	// Exactly one of HTTPGet, TCPSocket, Exec and GRPC is set.
	HTTPGet   *HTTPProbe
	TCPSocket *TCPProbe
	Exec      *ExecProbe
	GRPC      *GRPCProbe
	// InitialDelay is how long after the container starts the first check comes.
	InitialDelay time.Duration
	// Timeout bounds one check: a slower check fails.
	Timeout time.Duration
	// Period is the time from the start of one check to the start of the next.
	Period time.Duration
	// SuccessThreshold consecutive successes make the probe healthy, FailureThreshold
	// consecutive failures unhealthy.
	SuccessThreshold int
	FailureThreshold int
}

// HTTPProbe checks with an HTTP GET: a status in [200,400) is success.
type HTTPProbe struct {
	// Scheme is "http" or "https". HTTPS certificates are not verified, as in Kubernetes:
	// the probe checks that the app answers, not who it is.
	Scheme string
	// Host is the address to connect to; empty means the instance's.
	Host string
	Port int
	// Path is the request's path, with its query if any.
	Path string
	// Headers are sent with the request; a Host header sets the request's host.
	Headers http.Header
}

// TCPProbe checks that a TCP connection can be opened. A frozen process whose kernel still
// accepts connections passes it; an HTTP probe catches that.
type TCPProbe struct {
	// Host is the address to connect to; empty means the instance's.
	Host string
	Port int
}

// ExecProbe runs a command in the container: exit code 0 is success.
type ExecProbe struct {
	Command []string
}

// validate checks what Check and ProbeTracker rely on.
func (p *ProbeSpec) validate() error {
	handlers := 0
	for _, set := range []bool{p.HTTPGet != nil, p.TCPSocket != nil, p.Exec != nil, p.GRPC != nil} {
		if set {
			handlers++
		}
	}
	var errs []error
	switch p.Kind {
	case ProbeLiveness, ProbeReadiness, ProbeStartup:
	default:
		errs = append(errs, fmt.Errorf("kind %q is not liveness, readiness or startup", p.Kind))
	}
	if handlers != 1 {
		errs = append(errs, fmt.Errorf("has %d handlers, want exactly one of httpGet, tcpSocket, exec and grpc", handlers))
	}
	if h := p.HTTPGet; h != nil {
		if h.Scheme != "http" && h.Scheme != "https" {
			errs = append(errs, fmt.Errorf("scheme %q is not http or https", h.Scheme))
		}
		errs = append(errs, validPort(h.Port))
	}
	if t := p.TCPSocket; t != nil {
		errs = append(errs, validPort(t.Port))
	}
	if e := p.Exec; e != nil && len(e.Command) == 0 {
		errs = append(errs, errors.New("exec command is empty"))
	}
	if g := p.GRPC; g != nil {
		errs = append(errs, validPort(g.Port))
	}
	if p.InitialDelay < 0 || p.Timeout <= 0 || p.Period <= 0 || p.SuccessThreshold < 1 || p.FailureThreshold < 1 {
		errs = append(errs, fmt.Errorf("timings (delay %v, timeout %v, period %v, thresholds %d/%d) must be positive",
			p.InitialDelay, p.Timeout, p.Period, p.SuccessThreshold, p.FailureThreshold))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s probe: %w", p.Kind, err)
	}
	return nil
}

func validPort(port int) error {
	if port < 1 || port > 65535 {
		return fmt.Errorf("port %d is not in 1-65535", port)
	}
	return nil
}

// probeTransport keeps no connection between checks, as Kubernetes does: a probe must
// open a fresh connection to see what a new client would, and an idle connection would
// outlive the Prober. It never uses a proxy.
var probeTransport = &http.Transport{
	DisableKeepAlives: true,
	// The probe checks that the app answers, not who it is (Kubernetes does the same).
	TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
}

// probeUserAgent is sent unless the probe gives its own, so apps can tell probes apart.
const probeUserAgent = "shoal-probe/1"

// maxProbeRedirects is how many same-host redirects an HTTP probe follows, as in Kubernetes.
const maxProbeRedirects = 10

// Check runs one check of p against the instance at addr (used when the probe names no
// host; gRPC probes always use it); rt, id and container are for exec probes. It returns nil on success. A check
// that takes longer than p.Timeout is stopped and fails with an error wrapping
// context.DeadlineExceeded.
func Check(ctx context.Context, p ProbeSpec, addr string, rt Runtime, id, container string) error {
	if p.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.Timeout)
		defer cancel()
	}
	var err error
	switch {
	case p.HTTPGet != nil:
		err = checkHTTP(ctx, p.HTTPGet, addr)
	case p.TCPSocket != nil:
		err = checkTCP(ctx, p.TCPSocket, addr)
	case p.Exec != nil:
		err = checkExec(ctx, p.Exec, rt, id, container)
	case p.GRPC != nil:
		err = checkGRPC(ctx, p.GRPC, addr)
	default:
		err = fmt.Errorf("%w: no handler", ErrInvalidSpec)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s probe: timed out after %v: %w", p.Kind, p.Timeout, err)
	}
	return fmt.Errorf("%s probe: %w", p.Kind, err)
}

func checkHTTP(ctx context.Context, h *HTTPProbe, addr string) error {
	target, status, err := httpGet(ctx, h, addr)
	if err != nil {
		return err
	}
	if status < 200 || status >= 400 {
		return fmt.Errorf("GET %s: status %d %s", target, status, http.StatusText(status))
	}
	return nil
}

// checkHTTPAnswers is checkHTTP for hooks: any answer is success, whatever its status.
func checkHTTPAnswers(ctx context.Context, h *HTTPProbe, addr string) error {
	_, _, err := httpGet(ctx, h, addr)
	return err
}

// httpGet sends the GET of an HTTP probe or hook and returns the URL and the status of
// the answer, whose body is not read.
func httpGet(ctx context.Context, h *HTTPProbe, addr string) (*url.URL, int, error) {
	target, err := url.Parse(h.Path)
	if err != nil {
		return nil, 0, fmt.Errorf("path %q: %w", h.Path, err)
	}
	target.Scheme = h.Scheme
	target.Host = net.JoinHostPort(cmp.Or(h.Host, addr), strconv.Itoa(h.Port))
	if !strings.HasPrefix(target.Path, "/") {
		target.Path = "/" + target.Path
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target.String(), nil)
	if err != nil {
		return nil, 0, err
	}
	for name, values := range h.Headers {
		for _, v := range values {
			req.Header.Add(name, v)
		}
	}
	// The client ignores a Host entry in Header; the request's Host field is what it sends.
	if host := req.Header.Get("Host"); host != "" {
		req.Host = host
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", probeUserAgent)
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "*/*")
	}
	client := &http.Client{Transport: probeTransport, CheckRedirect: sameHostRedirects}
	resp, err := client.Do(req)
	if err != nil {
		return nil, 0, err // a *url.Error: it names the method and URL
	}
	resp.Body.Close()
	return target, resp.StatusCode, nil
}

// sameHostRedirects follows redirects to the probed host only. A redirect elsewhere is
// not followed and its 3xx status counts as success, as in Kubernetes: a probe must not
// be turned into a request to another machine.
func sameHostRedirects(req *http.Request, via []*http.Request) error {
	if req.URL.Hostname() != via[0].URL.Hostname() {
		return http.ErrUseLastResponse
	}
	if len(via) >= maxProbeRedirects {
		return fmt.Errorf("stopped after %d redirects", maxProbeRedirects)
	}
	return nil
}

func checkTCP(ctx context.Context, t *TCPProbe, addr string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(cmp.Or(t.Host, addr), strconv.Itoa(t.Port)))
	if err != nil {
		return err
	}
	return conn.Close()
}

func checkExec(ctx context.Context, e *ExecProbe, rt Runtime, id, container string) error {
	if rt == nil {
		return errors.New("exec probe without a runtime")
	}
	code, err := rt.Exec(ctx, id, container, e.Command)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("%q exited with code %d", e.Command, code)
	}
	return nil
}
