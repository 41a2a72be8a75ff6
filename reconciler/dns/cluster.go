package dns

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/platzwart/platzwart/api/v1alpha1"
	"github.com/platzwart/platzwart/reconciler/plan"
)

// noCluster is the reason of values only the cluster knows, read without one.
const noCluster = "needs the cluster (no cluster access)"

// lister holds what one Records call shares.
type lister struct {
	plan    *plan.Plan
	opts    Options
	routing address
	// services caches the address of each Service by name.
	services map[string]address
}

// routingAddress is the external address of the workplace's routing: --address, the
// Gateway's status.addresses (Gateway mode), or the LoadBalancer address of the
// ingress controller's Service in routing.controllerNamespace.
func (l *lister) routingAddress(ctx context.Context) address {
	if a := l.opts.Address; a != "" {
		return parseAddress(a)
	}
	if l.opts.Reader == nil {
		return address{unknown: noCluster + ": the ingress address; pass --address"}
	}
	r := l.plan.Routing
	if strings.EqualFold(string(r.Mode), string(v1alpha1.RoutingGateway)) {
		return l.gatewayAddress(ctx, r.Gateway)
	}
	ns := r.ControllerNamespace
	if ns == "" {
		return address{unknown: "routing.controllerNamespace is not set, so the ingress controller's Service is unknown; pass --address"}
	}
	var list corev1.ServiceList
	if err := l.opts.Reader.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return address{unknown: fmt.Sprintf("listing the ingress controller's Services in %s: %v", ns, err)}
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	var pending, nodePort []string
	for i := range list.Items {
		s := &list.Items[i]
		switch s.Spec.Type {
		case corev1.ServiceTypeLoadBalancer:
			if a := loadBalancerAddress(s); a.unknown == "" {
				return a
			}
			pending = append(pending, s.Name)
		case corev1.ServiceTypeNodePort:
			nodePort = append(nodePort, s.Name)
		}
	}
	switch {
	case len(pending) > 0:
		return address{unknown: fmt.Sprintf("the ingress controller's LoadBalancer Service %s/%s has no external address yet; pass --address", ns, pending[0])}
	case len(nodePort) > 0:
		return address{unknown: fmt.Sprintf("the ingress controller's Service %s/%s is a NodePort Service; pass --address with a node's address", ns, nodePort[0])}
	}
	return address{unknown: fmt.Sprintf("no LoadBalancer Service in %s (routing.controllerNamespace); pass --address", ns)}
}

// gatewayGVK is the Gateway API's Gateway, read unstructured (its types are not a
// dependency of platzwart).
var gatewayGVK = schema.GroupVersionKind{Group: "gateway.networking.k8s.io", Version: "v1", Kind: "Gateway"}

// gatewayAddress reads the addresses in the Gateway's status.
func (l *lister) gatewayAddress(ctx context.Context, ref *v1alpha1.GatewayRef) address {
	if ref == nil || ref.Name == "" {
		return address{unknown: "routing.gateway is not set; pass --address"}
	}
	ns := ref.Namespace
	if ns == "" {
		ns = l.plan.Namespace
	}
	gw := &unstructured.Unstructured{}
	gw.SetGroupVersionKind(gatewayGVK)
	if err := l.opts.Reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.Name}, gw); err != nil {
		return address{unknown: fmt.Sprintf("reading Gateway %s/%s: %v; pass --address", ns, ref.Name, err)}
	}
	addrs, _, _ := unstructured.NestedSlice(gw.Object, "status", "addresses")
	var a address
	for _, x := range addrs {
		m, _ := x.(map[string]any)
		v, _ := m["value"].(string)
		switch t, _ := m["type"].(string); {
		case v == "":
		case t == "Hostname":
			if a.hostname == "" {
				a.hostname = v
			}
		case t == "" || t == "IPAddress":
			a.ips = append(a.ips, v)
		}
	}
	if len(a.ips) > 0 {
		a.hostname = ""
		return a
	}
	if a.hostname != "" {
		return a
	}
	return address{unknown: fmt.Sprintf("Gateway %s/%s has no address in its status yet; pass --address", ns, ref.Name)}
}

// serviceAddress is the external address of the workplace's Service name: its
// LoadBalancer address or external IPs; for a NodePort Service the routing's
// address, with a note on the ports.
func (l *lister) serviceAddress(ctx context.Context, name string) address {
	if a, ok := l.services[name]; ok {
		return a
	}
	a := l.readService(ctx, name)
	l.services[name] = a
	return a
}

func (l *lister) readService(ctx context.Context, name string) address {
	ns := l.plan.Namespace
	if l.opts.Reader == nil {
		return address{unknown: fmt.Sprintf("%s: the address of Service %s/%s", noCluster, ns, name)}
	}
	var s corev1.Service
	if err := l.opts.Reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
		if apierrors.IsNotFound(err) {
			return address{unknown: fmt.Sprintf("Service %s/%s does not exist (apply the workplace first)", ns, name)}
		}
		return address{unknown: fmt.Sprintf("reading Service %s/%s: %v", ns, name, err)}
	}
	if len(s.Spec.ExternalIPs) > 0 {
		return address{ips: append([]string(nil), s.Spec.ExternalIPs...)}
	}
	switch s.Spec.Type {
	case corev1.ServiceTypeLoadBalancer:
		if a := loadBalancerAddress(&s); a.unknown == "" {
			return a
		}
		return address{unknown: fmt.Sprintf("LoadBalancer Service %s/%s has no external address yet", ns, name)}
	case corev1.ServiceTypeNodePort:
		var ports []string
		for _, p := range s.Spec.Ports {
			ports = append(ports, fmt.Sprintf("%d at node port %d", p.Port, p.NodePort))
		}
		a := l.routing
		note := fmt.Sprintf("NodePort Service %s: DNS cannot carry ports; clients reach port %s of a node", name, strings.Join(ports, ", "))
		if a.unknown != "" {
			return address{unknown: a.unknown, note: note}
		}
		a.note = joinNotes(a.note, note+" (the address is the routing's: pass --address with a node's address if it is not one)")
		return a
	}
	return address{unknown: fmt.Sprintf("Service %s/%s is of type %s: not reachable from outside the cluster", ns, name, s.Spec.Type)}
}

// loadBalancerAddress is the address in a Service's status.loadBalancer.
func loadBalancerAddress(s *corev1.Service) address {
	var a address
	for _, in := range s.Status.LoadBalancer.Ingress {
		switch {
		case in.IP != "":
			a.ips = append(a.ips, in.IP)
		case in.Hostname != "" && a.hostname == "":
			a.hostname = in.Hostname
		}
	}
	if len(a.ips) > 0 {
		a.hostname = ""
		return a
	}
	if a.hostname == "" {
		a.unknown = "no address"
	}
	return a
}

// parseAddress reads --address: an IP, or a host name (a CNAME target).
func parseAddress(s string) address {
	if ip := net.ParseIP(s); ip != nil {
		return address{ips: []string{ip.String()}}
	}
	return address{hostname: s}
}

// dkimKey derives the DKIM key text (v=DKIM1; k=rsa; p=<base64 SubjectPublicKeyInfo>)
// from the private key in the workplace's Secret; unknown says why it cannot.
// Nothing of the private key is returned or put in a message.
func (l *lister) dkimKey(ctx context.Context, secret, key string) (text, unknown string) {
	ns := l.plan.Namespace
	if l.opts.Reader == nil {
		return "", fmt.Sprintf("%s: the public key of Secret %s/%s key %s", noCluster, ns, secret, key)
	}
	var s corev1.Secret
	if err := l.opts.Reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: secret}, &s); err != nil {
		if apierrors.IsNotFound(err) {
			return "", fmt.Sprintf("Secret %s/%s does not exist (apply the workplace first: it is generated then)", ns, secret)
		}
		return "", fmt.Sprintf("reading Secret %s/%s: %v", ns, secret, err)
	}
	spki, err := publicKeyInfo(s.Data[key])
	if err != nil {
		return "", fmt.Sprintf("Secret %s/%s key %s: %v", ns, secret, key, err)
	}
	return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(spki), ""
}

// publicKeyInfo returns the DER SubjectPublicKeyInfo of an RSA private key in PKCS#8
// (or PKCS#1) PEM. Errors never quote the key.
func publicKeyInfo(data []byte) ([]byte, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("no such key")
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("not a PEM private key")
	}
	var pub any
	switch block.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("not a PKCS#8 private key")
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("not an RSA key (DKIM records here are k=rsa)")
		}
		pub = rk.Public()
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("not a PKCS#1 private key")
		}
		pub = k.Public()
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", block.Type)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("the public key: %w", err)
	}
	return der, nil
}
