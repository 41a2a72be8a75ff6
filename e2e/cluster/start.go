package cluster

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"
)

// Settings of the control plane.
const (
	serviceCIDR        = "10.96.0.0/16"
	podCIDR            = "10.244.0.0/16"
	serviceAccountIss  = "https://kubernetes.default.svc.cluster.local"
	contextName        = "platzwart-e2e"
	kwokNodeAnnotation = "kwok.x-k8s.io/node"
	kwokNodeLabel      = "type"
	kwokNodeLabelValue = "kwok"
	// kwokLeaseSeconds turns on node leases in kwok. Without it, a kwok started
	// with Stage files only renews nothing and the node flaps NotReady every
	// ~55 s (see docs in e2e/README.md).
	kwokLeaseSeconds = 40
)

// nodeResources is the capacity of every kwok node: room for a whole
// workplace on two nodes.
var nodeResources = corev1.ResourceList{
	corev1.ResourceCPU:    resource.MustParse("32"),
	corev1.ResourceMemory: resource.MustParse("128Gi"),
	corev1.ResourcePods:   resource.MustParse("250"),
}

// starter carries the state of one Start.
type starter struct {
	c     *Cluster
	bins  *Binaries
	opts  Options
	pki   string // directory with the token file, keys and serving certificate
	token string // admin bearer token
	probe *http.Client
}

// start launches the components one after the other, waiting for each to be
// healthy, and then registers the nodes. unlock releases the start lock once
// every port is bound.
func (s *starter) start(ctx context.Context, unlock func()) error {
	began := time.Now()
	ports, err := freePorts(5)
	if err != nil {
		return err
	}
	etcdPort, peerPort, apiPort, kcmPort, schedulerPort := ports[0], ports[1], ports[2], ports[3], ports[4]

	if err := s.writeCredentials(); err != nil {
		return err
	}
	// The probes only talk to loopback health endpoints, before the
	// apiserver's self-signed serving certificate exists.
	s.probe = &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
	}
	defer s.probe.CloseIdleConnections()

	etcdURL := "http://" + hostPort(etcdPort)
	peerURL := "http://" + hostPort(peerPort)
	if _, err := s.c.launch("etcd", s.bins.Etcd,
		"--name=platzwart-e2e",
		"--data-dir="+filepath.Join(s.c.runDir, "etcd"),
		"--listen-client-urls="+etcdURL,
		"--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=platzwart-e2e="+peerURL,
		// Throw-away test data: fsync latency on a busy disk must not slow
		// the apiserver down.
		"--unsafe-no-fsync",
	); err != nil {
		return err
	}
	if err := s.waitHealthy(ctx, "etcd", etcdURL+"/health", etcdTimeout); err != nil {
		return err
	}

	certDir := filepath.Join(s.pki, "apiserver")
	apiURL := "https://" + hostPort(apiPort)
	if _, err := s.c.launch("kube-apiserver", s.bins.APIServer,
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(apiPort),
		"--cert-dir="+certDir,
		"--token-auth-file="+filepath.Join(s.pki, "tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-account-key-file="+filepath.Join(s.pki, "sa.pub"),
		"--service-account-signing-key-file="+filepath.Join(s.pki, "sa.key"),
		"--service-account-issuer="+serviceAccountIss,
		"--service-cluster-ip-range="+serviceCIDR,
		"--allow-privileged=true",
		// The kubernetes Service cannot have a loopback endpoint; nothing
		// in the cluster needs to reach the apiserver through it.
		"--endpoint-reconciler-type=none",
		"--profiling=false",
	); err != nil {
		return err
	}
	if err := s.waitHealthy(ctx, "kube-apiserver", apiURL+"/readyz", apiserverTimeout); err != nil {
		return err
	}
	apiReady := time.Since(began)
	if err := s.writeKubeconfig(apiURL, filepath.Join(certDir, "apiserver.crt")); err != nil {
		return err
	}

	kubeconfig := s.c.kubeconfig
	var clientLimits []string
	if s.opts.UnlimitedClients {
		clientLimits = []string{"--kube-api-qps=5000", "--kube-api-burst=10000"}
	}
	if _, err := s.c.launch("kube-controller-manager", s.bins.ControllerManager, append([]string{
		"--kubeconfig=" + kubeconfig,
		"--authentication-kubeconfig=" + kubeconfig,
		"--authorization-kubeconfig=" + kubeconfig,
		// The apiserver has no front-proxy or client CA to look up.
		"--authentication-skip-lookup",
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(kcmPort),
		"--leader-elect=false",
		"--service-account-private-key-file=" + filepath.Join(s.pki, "sa.key"),
		"--profiling=false",
	}, clientLimits...)...); err != nil {
		return err
	}
	if _, err := s.c.launch("kube-scheduler", s.bins.Scheduler, append([]string{
		"--kubeconfig=" + kubeconfig,
		"--authentication-kubeconfig=" + kubeconfig,
		"--authorization-kubeconfig=" + kubeconfig,
		// The apiserver has no front-proxy or client CA to look up.
		"--authentication-skip-lookup",
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(schedulerPort),
		"--leader-elect=false",
		"--profiling=false",
	}, clientLimits...)...); err != nil {
		return err
	}
	if _, err := s.c.launch("kwok", s.bins.Kwok,
		"--kubeconfig="+kubeconfig,
		"--config="+s.bins.KwokStages,
		"--manage-nodes-with-annotation-selector="+kwokNodeAnnotation+"=fake",
		"--node-lease-duration-seconds="+strconv.Itoa(kwokLeaseSeconds),
		"--cidr="+podCIDR,
	); err != nil {
		return err
	}
	if err := s.waitHealthy(ctx, "kube-controller-manager", "https://"+hostPort(kcmPort)+"/healthz", componentTimeout); err != nil {
		return err
	}
	if err := s.waitHealthy(ctx, "kube-scheduler", "https://"+hostPort(schedulerPort)+"/healthz", componentTimeout); err != nil {
		return err
	}
	unlock() // all ports are bound now

	client, err := kubernetes.NewForConfig(s.c.config)
	if err != nil {
		return fmt.Errorf("create client: %w", err)
	}
	if err := s.createNodes(ctx, client); err != nil {
		return err
	}
	if err := s.createStorageClass(ctx, client); err != nil {
		return err
	}
	if err := s.waitFor(ctx, "kwok nodes Ready", nodesTimeout, func(ctx context.Context) (bool, error) {
		return nodesReady(ctx, client, s.opts.Nodes)
	}); err != nil {
		return err
	}
	if err := s.waitFor(ctx, "the default service account", componentTimeout, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, err
	}); err != nil {
		return err
	}
	fmt.Fprintf(s.opts.Progress, "e2e/cluster: control plane %s ready in %s (API server after %s), run directory %s\n",
		s.bins.Versions.Kubernetes, time.Since(began).Round(10*time.Millisecond), apiReady.Round(10*time.Millisecond), s.c.runDir)
	return nil
}

// writeCredentials writes the admin token file and the service-account key
// pair.
func (s *starter) writeCredentials() error {
	s.pki = filepath.Join(s.c.runDir, "pki")
	if err := os.MkdirAll(s.pki, 0o700); err != nil {
		return fmt.Errorf("create pki directory: %w", err)
	}
	token := make([]byte, 24)
	if _, err := rand.Read(token); err != nil {
		return fmt.Errorf("generate admin token: %w", err)
	}
	s.token = hex.EncodeToString(token)
	// token,user,uid,"groups"
	line := s.token + `,admin,admin,"system:masters"` + "\n"
	if err := os.WriteFile(filepath.Join(s.pki, "tokens.csv"), []byte(line), 0o600); err != nil {
		return fmt.Errorf("write token file: %w", err)
	}

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("generate service-account key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return fmt.Errorf("encode service-account public key: %w", err)
	}
	files := map[string]*pem.Block{
		"sa.key": {Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)},
		"sa.pub": {Type: "PUBLIC KEY", Bytes: pub},
	}
	for name, block := range files {
		if err := os.WriteFile(filepath.Join(s.pki, name), pem.EncodeToMemory(block), 0o600); err != nil {
			return fmt.Errorf("write service-account key: %w", err)
		}
	}
	return nil
}

// writeKubeconfig writes the admin kubeconfig, trusting the apiserver's
// self-signed certificate bundle (serving certificate and its CA), and loads
// the client configuration from it.
func (s *starter) writeKubeconfig(server, certFile string) error {
	ca, err := os.ReadFile(certFile)
	if err != nil {
		return fmt.Errorf("read apiserver certificate: %w", err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[contextName] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: s.token}
	cfg.Contexts[contextName] = &clientcmdapi.Context{Cluster: contextName, AuthInfo: "admin", Namespace: metav1.NamespaceDefault}
	cfg.CurrentContext = contextName
	if err := clientcmd.WriteToFile(*cfg, s.c.kubeconfig); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	restCfg, err := restConfig(s.c.kubeconfig)
	if err != nil {
		return err
	}
	s.c.config = restCfg
	return nil
}

// createNodes registers the kwok nodes. kwok manages nodes with its
// annotation and keeps their status and lease up to date.
func (s *starter) createNodes(ctx context.Context, client kubernetes.Interface) error {
	for i := range s.opts.Nodes {
		name := kwokNodeName(i)
		if _, err := client.CoreV1().Nodes().Create(ctx, kwokNode(name), metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("register node %s: %w", name, err)
		}
	}
	return nil
}

func kwokNodeName(i int) string { return fmt.Sprintf("kwok-node-%d", i) }

// kwokNode is a node for kwok to manage: its annotation, labels and capacity.
func kwokNode(name string) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{kwokNodeAnnotation: "fake"},
			Labels: map[string]string{
				kwokNodeLabel:                   kwokNodeLabelValue,
				corev1.LabelHostname:            name,
				corev1.LabelOSStable:            "linux",
				corev1.LabelArchStable:          "amd64", // what chart images are built for
				"node-role.kubernetes.io/agent": "",
			},
		},
		Status: corev1.NodeStatus{
			Capacity:    nodeResources.DeepCopy(),
			Allocatable: nodeResources.DeepCopy(),
		},
	}
}

// createStorageClass creates kwok's StorageClass as the default one. kwok's
// volume stages provision and bind its claims.
func (s *starter) createStorageClass(ctx context.Context, client kubernetes.Interface) error {
	data, err := os.ReadFile(s.bins.StorageClass)
	if err != nil {
		return fmt.Errorf("read storage class: %w", err)
	}
	var sc storagev1.StorageClass
	if err := yaml.UnmarshalStrict(data, &sc); err != nil {
		return fmt.Errorf("decode storage class %s: %w", s.bins.StorageClass, err)
	}
	if sc.Annotations == nil {
		sc.Annotations = map[string]string{}
	}
	sc.Annotations["storageclass.kubernetes.io/is-default-class"] = "true"
	if _, err := client.StorageV1().StorageClasses().Create(ctx, &sc, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create storage class %s: %w", sc.Name, err)
	}
	return nil
}

// nodesReady reports whether n kwok nodes exist, are Ready and carry none of
// the taints that keep pods off not-ready nodes.
func nodesReady(ctx context.Context, client kubernetes.Interface, n int) (bool, error) {
	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: kwokNodeLabel + "=" + kwokNodeLabelValue})
	if err != nil {
		return false, err
	}
	if len(nodes.Items) < n {
		return false, nil
	}
	for _, node := range nodes.Items {
		if !NodeReady(&node) {
			return false, nil
		}
		for _, taint := range node.Spec.Taints {
			if taint.Key == corev1.TaintNodeNotReady || taint.Key == corev1.TaintNodeUnreachable {
				return false, nil
			}
		}
	}
	return true, nil
}

// NodeReady reports whether a node's Ready condition is True.
func NodeReady(node *corev1.Node) bool {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// waitHealthy waits until a health endpoint answers 200.
func (s *starter) waitHealthy(ctx context.Context, name, url string, timeout time.Duration) error {
	return s.waitFor(ctx, name+" health ("+url+")", timeout, func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		if s.token != "" {
			req.Header.Set("Authorization", "Bearer "+s.token)
		}
		resp, err := s.probe.Do(req)
		if err != nil {
			return false, err
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false, fmt.Errorf("%s: %s: %s", url, resp.Status, body)
		}
		return true, nil
	})
}

// waitFor polls check until it reports true. It gives up after timeout, when
// ctx is done, or as soon as a component has exited, then with the end of
// that component's log.
func (s *starter) waitFor(ctx context.Context, what string, timeout time.Duration, check func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		if p := s.c.exitedComponent(); p != nil {
			return fmt.Errorf("wait for %s: %s exited (%v); end of %s:\n%s", what, p.name, p.exitErr, p.logPath, logTail(p.logPath, 20))
		}
		ok, err := check(ctx)
		if ok {
			return nil
		}
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w (last error: %v)", what, ctx.Err(), lastErr)
		case <-tick.C:
		}
	}
}

// exitedComponent returns a component that has exited, or nil.
func (c *Cluster) exitedComponent() *component {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.procs {
		if p.done == nil {
			continue
		}
		select {
		case <-p.done:
			return p
		default:
		}
	}
	return nil
}

// isNotFound reports whether err is a Kubernetes NotFound error.
func isNotFound(err error) bool { return apierrors.IsNotFound(err) }
