package dns_test

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/e2e/cluster"
	"github.com/platzwart/platzwart/reconciler/catalog"
	"github.com/platzwart/platzwart/reconciler/dns"
	"github.com/platzwart/platzwart/reconciler/dns/dnstest"
	"github.com/platzwart/platzwart/reconciler/load"
	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/secrets"
)

// The tests that read Secrets and Services run against a real local control plane
// (e2e/cluster), started on first use.
func TestMain(m *testing.M) { os.Exit(cluster.RunTests(m)) }

const domain = "wp.example.org"

// planMail plans workplace wp in namespace ns with the test catalog layer's mail
// component (dnstest.MailComponent) selected, or mail switched off.
func planMail(t *testing.T, ns, mail string) (*plan.Plan, *catalog.Catalog) {
	t.Helper()
	dir := t.TempDir()
	dnstest.WriteMailComponent(t, dir)
	doc := `apiVersion: platzwart.io/v1alpha1
kind: Workplace
metadata: {name: wp, namespace: ` + ns + `}
spec:
  domain: ` + domain + `
  profile: minikube
  components: {mail: ` + mail + `, video: jitsi}
  values:
    jitsi: {jvb: {advertiseAddress: 192.0.2.10}}
`
	if err := os.WriteFile(filepath.Join(dir, "workplace.yaml"), []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	repo, err := load.Dir(dir, platzwart.Builtin(), ns)
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.Build(repo.Workplaces[0], repo.Catalog)
	if err != nil {
		t.Fatal(err)
	}
	return p, repo.Catalog
}

// byKey indexes records by "name type".
func byKey(recs []dns.Record) map[string][]dns.Record {
	out := map[string][]dns.Record{}
	for _, r := range recs {
		k := r.Name + " " + string(r.Type)
		out[k] = append(out[k], r)
	}
	return out
}

// TestRecordsWithoutCluster: a plain Git directory lists every record, those that
// need the cluster (addresses, the DKIM key) with the reason instead of a value;
// the zone snippet marks them with placeholders so that it does not load unedited.
func TestRecordsWithoutCluster(t *testing.T) {
	p, cat := planMail(t, "demo", "testmail")
	recs, err := dns.Records(t.Context(), p, cat, dns.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := byKey(recs)
	for _, k := range []string{"@ A", "id A", "mail A", "mx A", "meet A", "files A", "@ MX", "@ TXT", "_dmarc TXT",
		"platzwart._domainkey TXT", "_submissions._tcp SRV", "_caldavs._tcp SRV", "autoconfig CNAME"} {
		if len(got[k]) != 1 {
			t.Errorf("%s: %d records, want 1 (all: %v)", k, len(got[k]), keys(got))
		}
	}
	for _, k := range []string{"id A", "mx A", "platzwart._domainkey TXT"} {
		if r := got[k]; len(r) == 1 && (r[0].Known() || !strings.Contains(r[0].Unknown, "no cluster access")) {
			t.Errorf("%s: %+v, want unknown for want of the cluster", k, r[0])
		}
	}
	if r := got["@ MX"]; len(r) == 1 && (r[0].Value != "mx."+domain+"." || r[0].Priority != 10 || r[0].TTL != 3600) {
		t.Errorf("MX: %+v", r[0])
	}
	if r := got["_dmarc TXT"]; len(r) == 1 && (r[0].Value != "v=DMARC1; p=quarantine; rua=mailto:postmaster@"+domain || r[0].TTL != 300) {
		t.Errorf("DMARC: %+v (the text template sees .Workplace.Domain)", r[0])
	}
	if r := got["_submissions._tcp SRV"]; len(r) == 1 && (r[0].Port != 465 || r[0].Weight != 1 || r[0].Value != "mx."+domain+".") {
		t.Errorf("SRV: %+v", r[0])
	}
	if r := got["autoconfig CNAME"]; len(r) == 1 && r[0].Value != "mail."+domain+"." {
		t.Errorf("CNAME: %+v", r[0])
	}
	var zone bytes.Buffer
	if err := dns.WriteZone(&zone, "demo/wp", p.Domain, recs); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"$ORIGIN " + domain + ".\n", "<address>", "p=<public key>", "; unknown: needs the cluster", "record(s) with a <placeholder>"} {
		if !strings.Contains(zone.String(), want) {
			t.Errorf("zone lacks %q:\n%s", want, zone.String())
		}
	}
	// Deterministic: the same input gives the same records.
	again, err := dns.Records(t.Context(), p, cat, dns.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var zone2 bytes.Buffer
	_ = dns.WriteZone(&zone2, "demo/wp", p.Domain, again)
	if zone.String() != zone2.String() {
		t.Errorf("two runs differ:\n%s\n---\n%s", zone.String(), zone2.String())
	}
}

func keys(m map[string][]dns.Record) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestMailOffRemovesEveryMailRecord: switching mail off removes its hosts' address
// records and every record it declared, and changes nothing else.
func TestMailOffRemovesEveryMailRecord(t *testing.T) {
	on, cat := planMail(t, "demo", "testmail")
	off, catOff := planMail(t, "demo", "none")
	withMail, err := dns.Records(t.Context(), on, cat, dns.Options{Address: "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	without, err := dns.Records(t.Context(), off, catOff, dns.Options{Address: "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	var rest []dns.Record
	for _, r := range withMail {
		if r.Component != "testmail" {
			rest = append(rest, r)
		}
	}
	if len(rest) == len(withMail) {
		t.Fatal("no mail records with mail on")
	}
	for _, r := range without {
		if r.Component == "testmail" || r.Type == dns.MX || r.Type == dns.SRV || strings.Contains(r.Name, "_domainkey") || r.Name == "_dmarc" {
			t.Errorf("with mail off: %+v", r)
		}
	}
	var a, b bytes.Buffer
	_ = dns.WriteZone(&a, "demo/wp", domain, rest)
	_ = dns.WriteZone(&b, "demo/wp", domain, without)
	if a.String() != b.String() {
		t.Errorf("the other records changed:\nmail on, without its records:\n%s\nmail off:\n%s", a.String(), b.String())
	}
}

// TestRecordsFromTheCluster: with the cluster, the addresses come from the ingress
// controller's LoadBalancer Service and the mail Service (NodePort: the routing's
// address and a note on ports), and the DKIM record carries the public half of the
// key the secrets generator put in the Secret, and nothing of the private key.
func TestRecordsFromTheCluster(t *testing.T) {
	c := cluster.FromTest(t)
	ns := c.NewNamespace(t)
	ingressNS := c.NewNamespace(t)
	p, cat := planMail(t, ns, "testmail")
	p.Routing.ControllerNamespace = ingressNS
	cs := kubernetes.NewForConfigOrDie(c.Config())
	ctx := t.Context()
	// The plan's DKIM Secret, generated as apply generates it.
	var dkim []plan.Secret
	for _, s := range p.Secrets {
		if s.Component == "testmail" {
			dkim = append(dkim, s)
		}
	}
	if len(dkim) != 1 {
		t.Fatalf("testmail's Secrets: %+v", dkim)
	}
	if _, err := (&secrets.Manager{Client: cs}).Ensure(ctx, &plan.Plan{Workplace: p.Workplace, Namespace: ns, Secrets: dkim}, nil); err != nil {
		t.Fatal(err)
	}
	lb := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "ingress-nginx-controller", Namespace: ingressNS},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Name: "https", Port: 443}}}}
	lb, err := cs.CoreV1().Services(ingressNS).Create(ctx, lb, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(c.Config(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}

	// Before the load balancer has an address: unknown, saying so.
	recs, err := dns.Records(ctx, p, cat, dns.Options{Reader: cl})
	if err != nil {
		t.Fatal(err)
	}
	if r := byKey(recs)["id A"]; len(r) != 1 || !strings.Contains(r[0].Unknown, "has no external address yet") {
		t.Errorf("id before the LoadBalancer has an address: %+v", r)
	}
	if r := byKey(recs)["mx A"]; len(r) != 1 || !strings.Contains(r[0].Unknown, "Service "+ns+"/wp-testmail-smtp does not exist") {
		t.Errorf("mx before its Service exists: %+v", r)
	}

	lb.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "203.0.113.7"}, {IP: "2001:db8::7"}}
	if _, err := cs.CoreV1().Services(ingressNS).UpdateStatus(ctx, lb, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	smtp := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "wp-testmail-smtp", Namespace: ns},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: map[string]string{"app": "x"},
			Ports: []corev1.ServicePort{{Name: "smtp", Port: 25, NodePort: 30025}}}}
	if _, err := cs.CoreV1().Services(ns).Create(ctx, smtp, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	recs, err = dns.Records(ctx, p, cat, dns.Options{Reader: cl})
	if err != nil {
		t.Fatal(err)
	}
	got := byKey(recs)
	if r := got["id A"]; len(r) != 1 || r[0].Value != "203.0.113.7" {
		t.Errorf("id A: %+v", r)
	}
	if r := got["id AAAA"]; len(r) != 1 || r[0].Value != "2001:db8::7" {
		t.Errorf("id AAAA: %+v", r)
	}
	if r := got["mx A"]; len(r) != 1 || r[0].Value != "203.0.113.7" || !strings.Contains(r[0].Note, "NodePort Service wp-testmail-smtp: DNS cannot carry ports; clients reach port 25 at node port 30025") {
		t.Errorf("mx A: %+v", r)
	}

	// The DKIM key is the public half of the Secret's private key.
	sec, err := cs.CoreV1().Secrets(ns).Get(ctx, "wp-testmail-dkim", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(sec.Data["private.pem"])
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.(*rsa.PrivateKey).PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	want := "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(spki)
	if r := got["platzwart._domainkey TXT"]; len(r) != 1 || r[0].Value != want {
		t.Errorf("DKIM: %+v\nwant %s", r, want)
	}

	// A LoadBalancer with a host name (a cloud load balancer): CNAMEs, with a note at
	// the domain itself.
	lb, err = cs.CoreV1().Services(ingressNS).Get(ctx, lb.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lb.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{Hostname: "lb-1.elb.example.net"}}
	if _, err := cs.CoreV1().Services(ingressNS).UpdateStatus(ctx, lb, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	recs, err = dns.Records(ctx, p, cat, dns.Options{Reader: cl})
	if err != nil {
		t.Fatal(err)
	}
	got = byKey(recs)
	if r := got["id CNAME"]; len(r) != 1 || r[0].Value != "lb-1.elb.example.net." {
		t.Errorf("id CNAME: %+v", r)
	}
	if r := got["@ CNAME"]; len(r) != 1 || !strings.Contains(r[0].Note, "ALIAS") {
		t.Errorf("@ CNAME: %+v, want a note about ALIAS records", r)
	}

	// The zone snippet: the DKIM text split into strings of at most 255 bytes, and
	// nothing of the private key anywhere.
	var zone bytes.Buffer
	if err := dns.WriteZone(&zone, ns+"/wp", p.Domain, recs); err != nil {
		t.Fatal(err)
	}
	var dkimLine string
	for _, l := range strings.Split(zone.String(), "\n") {
		if strings.HasPrefix(l, "platzwart._domainkey") {
			dkimLine = l
		}
	}
	parts := strings.Split(dkimLine, `"`)
	if len(parts) < 5 || strings.Join([]string{parts[1], parts[3]}, "") != want[:len(parts[1])+len(parts[3])] || len(parts[1]) != 255 {
		t.Errorf("DKIM line not split into 255-byte strings: %q", dkimLine)
	}
	priv := base64.StdEncoding.EncodeToString(block.Bytes)
	for _, chunk := range []string{priv[40:80], priv[len(priv)/2 : len(priv)/2+40], string(sec.Data["private.pem"][30:70])} {
		if strings.Contains(zone.String(), chunk) {
			t.Errorf("the zone snippet contains private key material %q", chunk)
		}
	}
}
