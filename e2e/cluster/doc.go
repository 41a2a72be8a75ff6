// Package cluster runs a real Kubernetes control plane on the local machine for
// end-to-end tests and the demo: etcd, kube-apiserver, kube-controller-manager
// and kube-scheduler, built from source at pinned versions, plus kwok as a fake
// kubelet that registers nodes and drives pods, persistent volumes and jobs
// through their lifecycle without running containers.
//
// The binaries are built once per set of pinned versions (the tools modules
// under e2e/tools) into the user's cache directory. Every control plane gets a
// run directory with its log files, kubeconfig and a pid file; the run
// directories live in a well-known state directory so that leftovers of a
// crashed run can be found and stopped again (see [Reap]).
//
// Test packages start one control plane per test binary:
//
//	func TestMain(m *testing.M) { os.Exit(cluster.RunTests(m)) }
//
//	func TestSomething(t *testing.T) {
//		c := cluster.FromTest(t)
//		ns := c.NewNamespace(t)
//		client := kubernetes.NewForConfigOrDie(c.Config())
//		...
//	}
//
// When the environment variable PLATZWART_E2E_KUBECONFIG names a kubeconfig
// file, the tests use that existing cluster (for example minikube) instead.
//
// The package works on Linux and macOS. On Linux the control plane processes of
// a test binary are also killed by the kernel when the test binary dies.
package cluster
