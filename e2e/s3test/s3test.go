// Package s3test gives tests the two programs that make the S3 backup target real:
// rclone at the version of the backup Jobs' image (reconciler/rclone), and a real S3
// server, the Versity S3 gateway (versitygw) with its posix backend on a temporary
// directory, over TLS with a CA of the test's own. Both are built from the Go module
// proxy, from the pinned tools modules e2e/tools/rclone and e2e/tools/versitygw, into
// <user cache dir>/platzwart/tools, once per pinned version: only a test that asks for
// them builds them (measured cold on 2 shared cores: see e2e/README.md).
package s3test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/platzwart/platzwart/e2e/toolbuild"
)

// Tools modules under e2e/tools: the directory, the package built, the binary.
var (
	// rclone's version is linked in as its Makefile does (without it: v1.76.0-DEV).
	// The tools module's own main package links rclone's s3 and local backends and
	// its copyto command, what the Jobs run, through rclone's cmd.Main: a fraction
	// of the full binary's build time.
	rcloneTool = toolbuild.Tool{Dir: "rclone", Module: "github.com/rclone/rclone", Pkg: "github.com/platzwart/platzwart/e2e/tools/rclone", Binary: "rclone",
		VersionVar: "github.com/rclone/rclone/fs.Version"}
	versitygwTool = toolbuild.Tool{Dir: "versitygw", Module: "github.com/versity/versitygw", Pkg: "github.com/versity/versitygw/cmd/versitygw", Binary: "versitygw"}
)

// Rclone returns the path of rclone, built when the cache lacks it.
func Rclone(t testing.TB) string {
	t.Helper()
	return toolbuild.Build(t, rcloneTool)
}

// Server is a running S3 server on 127.0.0.1.
type Server struct {
	// Endpoint is its https URL.
	Endpoint string
	// AccessKeyID and SecretAccessKey are the root user's.
	AccessKeyID, SecretAccessKey string
	// CAFile is the PEM certificate of the CA that signed the server's certificate.
	CAFile string
	// Dir is the posix backend's root: bucket b's object k is the file Dir/b/k.
	Dir string
}

// Start builds versitygw when the cache lacks it and starts it with a fresh root
// user, stopping it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := toolbuild.Build(t, versitygwTool)
	work := t.TempDir()
	s := &Server{
		AccessKeyID:     "platzwart" + randomHex(t, 4),
		SecretAccessKey: randomHex(t, 20),
		Dir:             filepath.Join(work, "root"),
	}
	for _, d := range []string{s.Dir, filepath.Join(work, "sidecar")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	certFile, keyFile := filepath.Join(work, "server.crt"), filepath.Join(work, "server.key")
	s.CAFile = filepath.Join(work, "ca.crt")
	writeCertificates(t, s.CAFile, certFile, keyFile)
	port := freePort(t)
	s.Endpoint = fmt.Sprintf("https://127.0.0.1:%d", port)

	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin,
		"--port", fmt.Sprintf("127.0.0.1:%d", port), "--cert", certFile, "--key", keyFile, "--quiet",
		"posix", "--sidecar", filepath.Join(work, "sidecar"), s.Dir)
	// The keys go through the environment, not the command line (ps shows that).
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY_ID="+s.AccessKeyID, "ROOT_SECRET_ACCESS_KEY="+s.SecretAccessKey)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start versitygw: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			t.Logf("versitygw output:\n%s", logs.String())
		}
	})
	if err := s.waitReady(done); err != nil {
		t.Fatalf("versitygw on %s: %v\n%s", s.Endpoint, err, logs.String())
	}
	return s
}

// waitReady waits until the server answers over TLS with the test CA.
func (s *Server) waitReady(done <-chan error) error {
	pem, err := os.ReadFile(s.CAFile)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-done:
			return fmt.Errorf("exited: %v", err)
		default:
		}
		resp, err := client.Get(s.Endpoint + "/")
		if err == nil {
			resp.Body.Close()
			return nil // any HTTP answer (403 without a signature) means it serves
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer within 30s: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// MakeBucket creates a bucket through the S3 API (rclone mkdir, as the root user).
func (s *Server) MakeBucket(t testing.TB, bucket string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), Rclone(t), "mkdir", "--config=/dev/null", ":s3:"+bucket)
	cmd.Env = append(os.Environ(),
		"RCLONE_S3_PROVIDER=Other", "RCLONE_S3_ENDPOINT="+s.Endpoint, "RCLONE_CA_CERT="+s.CAFile,
		"RCLONE_S3_ACCESS_KEY_ID="+s.AccessKeyID, "RCLONE_S3_SECRET_ACCESS_KEY="+s.SecretAccessKey)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("create bucket %s: %v\n%s", bucket, err, out)
	}
	if fi, err := os.Stat(filepath.Join(s.Dir, bucket)); err != nil || !fi.IsDir() {
		t.Fatalf("bucket %s is not a directory of the posix backend: %v", bucket, err)
	}
}

// Objects lists the objects of a bucket as the posix backend stores them (files
// below the bucket's directory), with their sizes: what the server holds, read
// without the S3 API.
func (s *Server) Objects(t testing.TB, bucket string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	root := filepath.Join(s.Dir, bucket)
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		out[filepath.ToSlash(rel)] = fi.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// writeCertificates writes a CA and a server certificate for 127.0.0.1 it signed.
func writeCertificates(t testing.TB, caFile, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "platzwart s3test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for path, block := range map[string]*pem.Block{
		caFile:   {Type: "CERTIFICATE", Bytes: caDER},
		certFile: {Type: "CERTIFICATE", Bytes: der},
		keyFile:  {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
