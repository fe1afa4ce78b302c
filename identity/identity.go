// Package identity is Shoal's node identity room: a cluster certificate
// authority (CA) that the operator creates, the certificate it issues to each
// node binding the node's name to the node's own Ed25519 key, and the checks
// that a certificate was issued by the CA, names a given node, and is neither
// expired nor revoked.
//
// A node certificate is X.509 with the node name as subject common name and
// DNS SAN, optional IP SANs, and both the ServerAuth and ClientAuth extended
// key usages, so the same file can also serve the agent's HTTPS API. Gossip
// (package gossip) signs every record a node publishes with the node's key and
// carries its certificate so that others verify the signature.
//
// It must not: do I/O beyond reading and writing the files it is given, or
// know about gossip, the agent or the network. It uses the standard library only.
package identity

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// File names inside a CA directory (InitCA) and a node directory (Issue).
const (
	CACertFile   = "ca.crt"
	CAKeyFile    = "ca.key"
	NodeCertFile = "node.crt"
	NodeKeyFile  = "node.key"
)

// Default validities: the CA outlives many node certificates, so that node
// certificates can be renewed by re-issuing without touching the CA.
const (
	DefaultCAValidity   = 10 * 365 * 24 * time.Hour
	DefaultNodeValidity = 365 * 24 * time.Hour
)

// MaxNameLen bounds a node name; it matches gossip's limit.
const MaxNameLen = 128

// Errors that callers branch on with errors.Is.
var (
	// ErrUntrusted wraps every reason a certificate is not accepted: not
	// issued by a trusted CA, expired, revoked, the wrong name or key type.
	ErrUntrusted = errors.New("identity: certificate not trusted")
	// ErrExists means InitCA or Issue would overwrite a file.
	ErrExists = errors.New("identity: file exists")
)

// Fingerprint identifies a certificate by the SHA-256 of its DER bytes.
type Fingerprint [sha256.Size]byte

// FingerprintOf returns the fingerprint of a DER certificate.
func FingerprintOf(der []byte) Fingerprint { return sha256.Sum256(der) }

// String is the fingerprint in hex, for logs.
func (f Fingerprint) String() string { return hex.EncodeToString(f[:]) }

// Identity is a node's certificate and private key.
type Identity struct {
	// Name is the node name the certificate binds (its common name).
	Name string
	// Cert is the parsed certificate; DER its encoding, as sent to peers.
	Cert *x509.Certificate
	DER  []byte
	// Key signs what the node publishes.
	Key ed25519.PrivateKey
}

// Fingerprint identifies the identity's certificate.
func (id *Identity) Fingerprint() Fingerprint { return FingerprintOf(id.DER) }

// Sign signs msg with the node's key.
func (id *Identity) Sign(msg []byte) []byte { return ed25519.Sign(id.Key, msg) }

// InitCA creates a new CA in dir: ca.key (mode 0600) and ca.crt. It refuses to
// overwrite an existing CA.
func InitCA(dir, name string, validity time.Duration, now time.Time) error {
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	if err := refuseExisting(certPath, keyPath); err != nil {
		return err
	}
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"Shoal cluster CA"}},
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		return fmt.Errorf("identity: create CA certificate: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return writePair(certPath, der, keyPath, key)
}

// Issue creates a key and a certificate for node, signed by the CA in caDir,
// and writes node.key (mode 0600) and node.crt into outDir. It returns the
// certificate's serial number in hex (the form a revocation file uses).
func Issue(caDir, node string, ips []net.IP, validity time.Duration, outDir string, now time.Time) (string, error) {
	if err := checkName(node); err != nil {
		return "", err
	}
	ca, err := Load(filepath.Join(caDir, CACertFile), filepath.Join(caDir, CAKeyFile))
	if err != nil {
		return "", err
	}
	if !ca.Cert.IsCA {
		return "", fmt.Errorf("identity: %s is not a CA certificate", filepath.Join(caDir, CACertFile))
	}
	certPath, keyPath := filepath.Join(outDir, NodeCertFile), filepath.Join(outDir, NodeKeyFile)
	if err := refuseExisting(certPath, keyPath); err != nil {
		return "", err
	}
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: node},
		DNSNames:     []string{node},
		IPAddresses:  ips,
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return "", fmt.Errorf("identity: issue certificate for %q: %w", node, err)
	}
	if err := os.MkdirAll(outDir, 0o700); err != nil {
		return "", err
	}
	if err := writePair(certPath, der, keyPath, key); err != nil {
		return "", err
	}
	return serialHex(tmpl.SerialNumber), nil
}

// Load reads a certificate and its Ed25519 private key (PEM files, as
// written by InitCA and Issue). Name is the certificate's common name.
func Load(certFile, keyFile string) (*Identity, error) {
	certs, err := readCerts(certFile)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("identity: %s: no PEM \"PRIVATE KEY\" block", keyFile)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("identity: %s: %w", keyFile, err)
	}
	key, ok := parsed.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("identity: %s: key is %T, want Ed25519", keyFile, parsed)
	}
	cert := certs[0]
	if pub, ok := cert.PublicKey.(ed25519.PublicKey); !ok || !pub.Equal(key.Public()) {
		return nil, fmt.Errorf("identity: %s does not hold the key of %s", keyFile, certFile)
	}
	return &Identity{Name: cert.Subject.CommonName, Cert: cert, DER: cert.Raw, Key: key}, nil
}

// Verifier decides whether a certificate is a trusted node certificate.
type Verifier struct {
	roots   *x509.CertPool
	serials map[string]bool // revoked serial numbers, lower-case hex without leading zeros
	names   map[string]bool // revoked node names
}

// NewVerifier trusts every CA certificate in caFile (several during a CA
// rotation) and refuses what revokedFile lists ("" for none).
func NewVerifier(caFile, revokedFile string) (*Verifier, error) {
	cas, err := readCerts(caFile)
	if err != nil {
		return nil, err
	}
	v := &Verifier{roots: x509.NewCertPool(), serials: map[string]bool{}, names: map[string]bool{}}
	for _, ca := range cas {
		if !ca.IsCA {
			return nil, fmt.Errorf("identity: %s: %q is not a CA certificate", caFile, ca.Subject.CommonName)
		}
		v.roots.AddCert(ca)
	}
	if revokedFile != "" {
		if err := v.readRevoked(revokedFile); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// readRevoked reads a revocation file: one entry a line, "serial HEX" or
// "node NAME"; blank lines and lines starting with # are skipped.
func (v *Verifier) readRevoked(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("identity: revocation file: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		kind, value, _ := strings.Cut(text, " ")
		value = strings.TrimSpace(value)
		switch {
		case kind == "serial" && value != "":
			value = strings.ToLower(strings.ReplaceAll(value, ":", ""))
			// A serial is a number: any count of hex digits, leading zeros or not.
			n, ok := new(big.Int).SetString(value, 16)
			if !ok || n.Sign() <= 0 {
				return fmt.Errorf("identity: %s:%d: serial %q is not a positive hex number", path, line, value)
			}
			v.serials[serialHex(n)] = true
		case kind == "node" && value != "":
			v.names[value] = true
		default:
			return fmt.Errorf("identity: %s:%d: want \"serial HEX\" or \"node NAME\", got %q", path, line, text)
		}
	}
	return sc.Err()
}

// Verify checks that der is a certificate issued by a trusted CA for node
// name, valid at now, not revoked, with an Ed25519 key and the ClientAuth
// usage, and returns the certificate (its PublicKey is an ed25519.PublicKey).
// Errors wrap ErrUntrusted.
func (v *Verifier) Verify(der []byte, name string, now time.Time) (*x509.Certificate, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUntrusted, err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{
		Roots: v.roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUntrusted, err)
	}
	if cert.Subject.CommonName != name {
		return nil, fmt.Errorf("%w: certificate names %q, not %q", ErrUntrusted, cert.Subject.CommonName, name)
	}
	if v.names[name] || v.serials[serialHex(cert.SerialNumber)] {
		return nil, fmt.Errorf("%w: certificate %s of %q is revoked", ErrUntrusted, serialHex(cert.SerialNumber), name)
	}
	if _, ok := cert.PublicKey.(ed25519.PublicKey); !ok {
		return nil, fmt.Errorf("%w: key is %T, want Ed25519", ErrUntrusted, cert.PublicKey)
	}
	return cert, nil
}

// NameOf returns the common name of a DER certificate without trusting it,
// for error messages and logs.
func NameOf(der []byte) string {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return ""
	}
	return cert.Subject.CommonName
}

func readCerts(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	var certs []*x509.Certificate
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("identity: %s: PEM block %d is %q, want CERTIFICATE", path, n, block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("identity: %s: certificate %d: %w", path, n, err)
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("identity: %s: no PEM certificate", path)
	}
	return certs, nil
}

func writePair(certPath string, der []byte, keyPath string, key crypto.PrivateKey) error {
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600); err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	return nil
}

func refuseExisting(paths ...string) error {
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("%w: %s (move it away to replace it)", ErrExists, p)
		}
	}
	return nil
}

// checkName accepts names that are valid as a DNS SAN label sequence and fit gossip.
func checkName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("identity: node name must be 1 to %d bytes, got %q", MaxNameLen, name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return fmt.Errorf("identity: node name %q: only letters, digits, '-' and '.' are allowed", name)
		}
	}
	return nil
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return n.Add(n, big.NewInt(1))
}

func serialHex(n *big.Int) string { return fmt.Sprintf("%x", n) }
