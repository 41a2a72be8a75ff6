package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/e2e/cluster"
	"github.com/platzwart/platzwart/reconciler/check"
	"github.com/platzwart/platzwart/reconciler/dns/dnstest"
	"github.com/platzwart/platzwart/reconciler/load"
	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/secrets"
)

// dnsGolden compares got with testdata/dns/name; UPDATE_DNS_GOLDEN=1 rewrites it.
func dnsGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "dns", name)
	if os.Getenv("UPDATE_DNS_GOLDEN") == "1" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s differs (UPDATE_DNS_GOLDEN=1 rewrites it):\n%s", path, lineDiff(string(want), got))
	}
}

// lineDiff lists the lines only in want (-) or only in got (+).
func lineDiff(want, got string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	w, g := in(want), in(got)
	var b strings.Builder
	for _, l := range strings.Split(want, "\n") {
		if !g[l] {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range strings.Split(got, "\n") {
		if !w[l] {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}

// TestDNSExampleWorkplace: the records of the example workplace (its mail component
// included), from its Git directory without a cluster: with --address every host
// behind the ingress has its A record; the addresses and the DKIM key only the
// cluster knows are placeholders saying why, and everything else is listed.
func TestDNSExampleWorkplace(t *testing.T) {
	noCluster := filepath.Join(t.TempDir(), "no-kubeconfig")
	stdout, stderr, err := runCLI(t, "dns", "../../examples/workplace", "--kubeconfig", noCluster, "--address", "192.168.49.2")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	dnsGolden(t, "example.zone", stdout)
	if !strings.Contains(stderr, "no cluster access") {
		t.Errorf("stderr should say the cluster was not reached:\n%s", stderr)
	}
	stdout, _, err = runCLI(t, "dns", "../../examples/workplace", "--kubeconfig", noCluster, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	dnsGolden(t, "example-offline.json", stdout)
	var zones []dnsZone
	if err := json.Unmarshal([]byte(stdout), &zones); err != nil || len(zones) != 1 || len(zones[0].Records) == 0 {
		t.Fatalf("-o json: %v %+v", err, zones)
	}
	mail := 0
	for _, r := range zones[0].Records {
		needsCluster := strings.HasPrefix(r.Source, "spec.hosts.") || strings.HasSuffix(r.Name, "._domainkey")
		switch {
		case needsCluster && (r.Known() || !strings.Contains(r.Unknown, "no cluster access")):
			t.Errorf("%s %s without a cluster: %+v, want a placeholder saying why", r.Name, r.Type, r)
		case !needsCluster && !r.Known():
			t.Errorf("%s %s: %+v, needs no cluster", r.Name, r.Type, r)
		}
		if r.Type == "MX" || strings.HasSuffix(r.Name, "._domainkey") || r.Name == "_dmarc" {
			mail++
		}
	}
	if mail < 3 {
		t.Errorf("the example's mail component lists %d of MX, DKIM and DMARC records, want all 3", mail)
	}
	if _, _, err := runCLI(t, "dns", "../../examples/workplace", "-o", "wide"); err == nil || !strings.Contains(err.Error(), "--output") {
		t.Errorf("-o wide: %v, want an error naming --output", err)
	}
}

// TestDNSCommandAndCheckWithTheCluster: platzwart dns reads the ingress controller's
// Service, the mail Service and the generated DKIM Secret from a real API server;
// the zone it writes, served by a real DNS server on loopback (standing in for the
// operator's), passes platzwart check --resolver; with the MX record removed from
// the zone, check reports exactly that record.
func TestDNSCommandAndCheckWithTheCluster(t *testing.T) {
	c := cluster.FromTest(t)
	ns := c.NewNamespace(t)
	ingressNS := c.NewNamespace(t)
	dir := t.TempDir()
	dnstest.WriteMailComponent(t, dir)
	doc := `apiVersion: platzwart.io/v1alpha1
kind: Workplace
metadata: {name: wp, namespace: ` + ns + `}
spec:
  domain: wp.example.org
  profile: minikube
  components: {mail: testmail, video: none, office: none, chat: none}
  routing: {controllerNamespace: ` + ingressNS + `}
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
	ctx := t.Context()
	cs := kubernetes.NewForConfigOrDie(c.Config())
	only := *p
	only.Secrets = nil
	for _, s := range p.Secrets {
		if s.Component == "testmail" {
			only.Secrets = append(only.Secrets, s)
		}
	}
	if _, err := (&secrets.Manager{Client: cs}).Ensure(ctx, &only, nil); err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct{ ns, name, ip string }{{ingressNS, "ingress-nginx-controller", "203.0.113.7"}, {ns, "wp-testmail-smtp", "203.0.113.25"}} {
		svc, err := cs.CoreV1().Services(s.ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: s.name, Namespace: s.ns},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Name: "p", Port: 443}}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: s.ip}}
		if _, err := cs.CoreV1().Services(s.ns).UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	kc := c.KubeconfigPath()
	zone, stderr, err := runCLI(t, "dns", dir, "--kubeconfig", kc)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	for _, want := range []string{"id 3600 IN A 203.0.113.7", "mx 3600 IN A 203.0.113.25", `platzwart._domainkey 3600 IN TXT "v=DKIM1; k=rsa; p=MII`} {
		if !regexp.MustCompile(strings.ReplaceAll(regexp.QuoteMeta(want), " ", " +")).MatchString(zone) {
			t.Errorf("zone lacks %q:\n%s", want, zone)
		}
	}
	if strings.Contains(zone, "<") || strings.Contains(zone, "PRIVATE KEY") {
		t.Errorf("zone has placeholders or key material:\n%s", zone)
	}

	srv := dnstest.Serve(t, zone)
	dnsResults := func(t *testing.T) map[string]check.Result {
		t.Helper()
		// The hosts' HTTPS is not served here: --address sends it to a closed port, and
		// only the DNS checks are looked at.
		stdout, stderr, _ := runCLI(t, "check", dir, "--kubeconfig", kc, "--resolver", srv.Addr, "--address", dnstest.Closed(t), "--timeout", "1s", "-o", "json")
		var reports []check.Report
		if err := json.Unmarshal([]byte(stdout), &reports); err != nil || len(reports) != 1 {
			t.Fatalf("stdout is not one report: %v\n%s\n%s", err, stdout, stderr)
		}
		out := map[string]check.Result{}
		for _, r := range reports[0].Checks {
			if r.Name == check.CheckDNS {
				out[r.Target] = r
			}
		}
		return out
	}
	got := dnsResults(t)
	if len(got) < 10 {
		t.Errorf("%d DNS checks, want one per record: %+v", len(got), got)
	}
	for target, r := range got {
		if r.Status != check.Pass {
			t.Errorf("%s: %+v, want Pass", target, r)
		}
	}
	var lines []string
	for _, l := range strings.Split(zone, "\n") {
		if !regexp.MustCompile(`^@ +\d+ IN MX `).MatchString(l) {
			lines = append(lines, l)
		}
	}
	srv.Load(t, strings.Join(lines, "\n"))
	got = dnsResults(t)
	for target, r := range got {
		switch {
		case target == "wp.example.org. MX":
			if r.Status != check.Fail || r.Reason != check.ReasonDNSMissing {
				t.Errorf("MX removed: %+v, want %s", r, check.ReasonDNSMissing)
			}
		case r.Status != check.Pass:
			t.Errorf("%s: %+v, want Pass", target, r)
		}
	}
	if _, ok := got["wp.example.org. MX"]; !ok {
		t.Error("no check of the MX record")
	}
}
