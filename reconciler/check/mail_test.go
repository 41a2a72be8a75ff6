package check

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"
)

// mailNodePorts are the node ports of the mail Service the plan gives stalwart in
// profile minikube (derived from the workplace), by protocol.
func mailNodePorts(t *testing.T, w *workplace) map[string]int {
	t.Helper()
	for _, rel := range w.plan.Releases {
		if rel.Component != "stalwart" {
			continue
		}
		svc, _ := rel.Values["mailService"].(map[string]any)
		ports, _ := svc["nodePorts"].(map[string]any)
		out := map[string]int{}
		for _, name := range []string{"imaps", "submissions"} {
			n, err := strconv.Atoi(fmt.Sprint(ports[name]))
			if err != nil || n < 30000 {
				t.Fatalf("stalwart's values have no node port for %s: %v", name, svc)
			}
			out[name] = n
		}
		return out
	}
	t.Fatal("no stalwart release in the plan")
	return nil
}

// Greetings of a working mail server after the TLS handshake (RFC 9051 7.1.1,
// RFC 5321 4.2).
var mailGreetings = map[string]string{
	"imaps":       "* OK [CAPABILITY IMAP4rev2 AUTH=OAUTHBEARER AUTH=PLAIN] ready\r\n",
	"submissions": "220 mail ESMTP ready\r\n",
}

// mailListeners starts one real TLS listener per protocol presenting cert and
// writing greet[protocol] (default mailGreetings) on every connection, and returns
// Resolve entries that send the mail host's node ports there.
func mailListeners(t *testing.T, w *workplace, cert tls.Certificate, greet map[string]string) map[string]string {
	t.Helper()
	host := w.hostOf("stalwart", "mail")
	if host == "" {
		return map[string]string{}
	}
	out := map[string]string{}
	for name, port := range mailNodePorts(t, w) {
		line, ok := greet[name]
		if !ok {
			line = mailGreetings[name]
		}
		l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					_ = c.SetDeadline(time.Now().Add(5 * time.Second))
					_, _ = c.Write([]byte(line))
					// Wait for the client to hang up.
					_, _ = c.Read(make([]byte, 1))
				}()
			}
		}()
		out[net.JoinHostPort(host, strconv.Itoa(port))] = l.Addr().String()
	}
	return out
}

// webmailStart is Bulwark's answer to POST /api/auth/sso/start: the provider's
// authorization URL for the component's client, returning to redirect ("" = the
// English callback page).
func webmailStart(w *workplace, redirect string) fixture {
	c := w.clientOf("stalwart")
	if redirect == "" {
		redirect = "https://" + w.hostOf("stalwart", "webmail") + "/en/auth/callback"
	}
	q := url.Values{"response_type": {"code"}, "client_id": {c.id}, "redirect_uri": {redirect},
		"scope": {"openid email profile"}, "state": {"x"}, "code_challenge_method": {"S256"}}
	b, _ := json.Marshal(map[string]string{"authorize_url": w.exp.identity.issuerURL + "/authorize?" + q.Encode(), "state": "x"})
	return fixture{status: http.StatusOK, body: b}
}

// selfSigned is a certificate for names that no workplace CA signed.
func selfSigned(t *testing.T, names ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestMail: the example's mail component passes with a web client that hands the
// login to the provider and IMAPS/submissions listeners presenting the workplace's
// certificate; each way such a server is broken fails with its reason.
func TestMail(t *testing.T) {
	t.Parallel()
	w := newWorkplace(t, "demo", "jitsi")
	mailHost := w.hostOf("stalwart", "mail")
	if mailHost != "mail."+testDomain {
		t.Fatalf("mail host %q: the minikube profile should select stalwart", mailHost)
	}
	ports := mailNodePorts(t, w)
	imaps := "imaps://mail." + testDomain + ":" + strconv.Itoa(ports["imaps"])
	submissions := "submissions://mail." + testDomain + ":" + strconv.Itoa(ports["submissions"])
	start := "https://webmail." + testDomain + "/api/auth/sso/start"

	t.Run("working", func(t *testing.T) {
		in := serve(t, w, provider{}, nil)
		rep := run(t, w, in.options(w), 10*time.Second)
		for _, target := range []string{imaps, submissions, start} {
			want(t, rep, CheckApp, target, Pass, "")
		}
	})
	t.Run("certificate of another CA", func(t *testing.T) {
		in := serve(t, w, provider{}, nil)
		opts := in.options(w)
		opts.Resolve = mailListeners(t, w, selfSigned(t, mailHost), nil)
		rep := run(t, w, opts, 10*time.Second)
		want(t, rep, CheckApp, imaps, Fail, ReasonUntrustedCertificate)
		want(t, rep, CheckApp, submissions, Fail, ReasonUntrustedCertificate)
	})
	t.Run("not a mail server behind the port", func(t *testing.T) {
		in := serve(t, w, provider{}, nil)
		opts := in.options(w)
		opts.Resolve = mailListeners(t, w, w.cert, map[string]string{"imaps": "HTTP/1.1 400 Bad Request\r\n", "submissions": "* OK IMAP on the wrong port\r\n"})
		rep := run(t, w, opts, 10*time.Second)
		want(t, rep, CheckApp, imaps, Fail, ReasonUnexpectedBody)
		want(t, rep, CheckApp, submissions, Fail, ReasonUnexpectedBody)
	})
	t.Run("nothing listening", func(t *testing.T) {
		in := serve(t, w, provider{}, nil)
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		refused := l.Addr().String()
		l.Close()
		opts := in.options(w)
		opts.Resolve = map[string]string{net.JoinHostPort(mailHost, strconv.Itoa(ports["imaps"])): refused, net.JoinHostPort(mailHost, strconv.Itoa(ports["submissions"])): refused}
		rep := run(t, w, opts, 10*time.Second)
		want(t, rep, CheckApp, imaps, Fail, ReasonUnreachable)
	})
	t.Run("web mail without the provider", func(t *testing.T) {
		in := serve(t, w, provider{}, nil)
		// Bulwark answers 502 when the issuer's discovery fails.
		in.set("webmail."+testDomain+"/api/auth/sso/start", fixture{status: http.StatusBadGateway, body: []byte(`{"error":"OAuth discovery failed"}`)})
		rep := run(t, w, in.options(w), 10*time.Second)
		want(t, rep, CheckApp, start, Fail, ReasonUnexpectedStatus)
	})
	t.Run("web mail returning to an unregistered page", func(t *testing.T) {
		in := serve(t, w, provider{}, nil)
		in.set("webmail."+testDomain+"/api/auth/sso/start", webmailStart(w, "https://webmail."+testDomain+"/auth/callback"))
		rep := run(t, w, in.options(w), 10*time.Second)
		want(t, rep, CheckApp, start, Fail, ReasonUnexpectedBody)
	})
}
