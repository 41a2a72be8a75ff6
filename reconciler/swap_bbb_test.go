package reconciler_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/platzwart/platzwart/reconciler/plan"
)

// bbbInClusterSwap swaps the example's video to BigBlueButton with its server in the
// cluster: the example declares an existing server, which this drops.
var bbbInClusterSwap = map[string]string{
	"video: jitsi ": "video: bigbluebutton ",
	"    bigbluebutton:\n      servers:\n        - url: https://bbb.example.org/bigbluebutton/\n          secret: {name: bbb-secret, key: secret}\n": "",
}

// bbbMediaLabel and its value are what the built-in profiles select the media node by.
const bbbMediaLabel, bbbMediaValue = "platzwart.io/media", "bigbluebutton"

// addBBBMediaNode registers one more kwok node, labelled and tainted as the media node
// (the other kwok nodes carry neither), waits for it to be Ready, and removes it when
// the test ends.
func addBBBMediaNode(t *testing.T, e *env) string {
	t.Helper()
	nodes := e.cluster.Clientset.CoreV1().Nodes()
	tmpl, err := nodes.Get(t.Context(), "kwok-node-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	name := "media-" + e.ns
	labels := map[string]string{}
	for k, v := range tmpl.Labels {
		labels[k] = v
	}
	labels[corev1.LabelHostname] = name
	labels[bbbMediaLabel] = bbbMediaValue
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, Annotations: tmpl.Annotations},
		Spec:       corev1.NodeSpec{Taints: []corev1.Taint{{Key: bbbMediaLabel, Value: bbbMediaValue, Effect: corev1.TaintEffectNoSchedule}}},
		Status:     corev1.NodeStatus{Capacity: tmpl.Status.Capacity, Allocatable: tmpl.Status.Allocatable},
	}
	if _, err := nodes.Create(t.Context(), node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 30*time.Second)
		defer cancel()
		_ = nodes.Delete(ctx, name, metav1.DeleteOptions{})
	})
	err = wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		n, err := nodes.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				// kwok adds the not-ready taint until then; wait until only ours is left.
				return len(n.Spec.Taints) == 1, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("media node %s not Ready: %v", name, err)
	}
	return name
}

// bbbServerPod returns the one pod of the BigBlueButton server.
func bbbServerPod(t *testing.T, e *env) corev1.Pod {
	t.Helper()
	pods, err := e.cluster.Clientset.CoreV1().Pods(e.ns).List(t.Context(), metav1.ListOptions{
		LabelSelector: "app.kubernetes.io/instance=demo-bigbluebutton,app.kubernetes.io/component=server"})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 1 {
		t.Fatalf("%d server pods, want 1", len(pods.Items))
	}
	return pods.Items[0]
}

// assertBBBMediaPlacement: the server pod runs with the node's network on the media
// node, and no other pod of the workplace was placed there (the taint keeps them off).
func assertBBBMediaPlacement(t *testing.T, e *env, media string) {
	t.Helper()
	pod := bbbServerPod(t, e)
	if pod.Spec.NodeName != media {
		t.Errorf("server pod on node %q, want the media node %s", pod.Spec.NodeName, media)
	}
	if !pod.Spec.HostNetwork {
		t.Error("server pod without hostNetwork")
	}
	pods, err := e.cluster.Clientset.CoreV1().Pods(e.ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.Name != pod.Name && p.Spec.NodeName == media {
			t.Errorf("pod %s was placed on the tainted media node", p.Name)
		}
	}
}

// assertBBBSharedSecret: Greenlight and the server read the one shared secret the
// reconciler generated in the cluster.
func assertBBBSharedSecret(t *testing.T, e *env) {
	t.Helper()
	ref := func(deploy, container, name string) *corev1.SecretKeySelector {
		d, err := e.cluster.Clientset.AppsV1().Deployments(e.ns).Get(t.Context(), deploy, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Name != container {
				continue
			}
			for _, v := range c.Env {
				if v.Name == name && v.ValueFrom != nil {
					return v.ValueFrom.SecretKeyRef
				}
			}
		}
		t.Fatalf("%s %s reads no %s from a Secret", deploy, container, name)
		return nil
	}
	gl := ref("demo-bigbluebutton-greenlight", "greenlight", "BIGBLUEBUTTON_SECRET")
	web := ref("demo-bigbluebutton-server", "bbb-web", "SHARED_SECRET")
	if gl.Name != web.Name || gl.Key != web.Key {
		t.Errorf("Greenlight reads %s/%s, bbb-web %s/%s: want one secret", gl.Name, gl.Key, web.Name, web.Key)
	}
	s, err := e.cluster.Clientset.CoreV1().Secrets(e.ns).Get(t.Context(), web.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the shared secret's Secret: %v", err)
	}
	if n := len(s.Data[web.Key]); n != 64 {
		t.Errorf("shared secret of %d bytes, want the 64 hex digits generated", n)
	}
}

// bbbRealm returns the identity release's realm as rendered into its ConfigMap.
func bbbRealm(t *testing.T, e *env) string {
	t.Helper()
	cm, err := e.cluster.Clientset.CoreV1().ConfigMaps(e.ns).Get(t.Context(), "demo-keycloak-realm", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, v := range cm.Data {
		b.WriteString(v)
	}
	return b.String()
}

func (e *env) bbbReconcile(t *testing.T, p *plan.Plan) ([]string, map[string]int) {
	t.Helper()
	e.events.reset()
	rep := e.reconcile(p)
	return rep.KeptVolumes, revisions(t, e, "demo")
}

// TestSwapBBBServerMakeBeforeBreak swaps jitsi for BigBlueButton with its server in
// the cluster and back on the local control plane, on two kwok nodes plus a media node
// labelled and tainted as the profile selects: each time the new video release is
// ready before the old one is uninstalled; the server pod lands on the media node and
// nothing else does; Greenlight and the server read one generated secret; the
// identity client, the portal tile and Element's video settings follow every swap,
// files and office keep their revision; Greenlight's claim is kept when it goes and
// adopted again when it comes back.
func TestSwapBBBServerMakeBeforeBreak(t *testing.T) {
	e := newEnv(t)
	media := addBBBMediaNode(t, e)
	e.reconcile(e.plan(e.workplaceDir(nil, nil)))
	before := revisions(t, e, "demo")
	consumers := []string{"keycloak", "synapse", "portal"}

	// jitsi → bigbluebutton
	_, toBBB := e.bbbReconcile(t, e.plan(e.workplaceDir(bbbInClusterSwap, nil)))
	if ready, gone := e.events.index("demo-bigbluebutton", "ready"), e.events.index("demo-jitsi", "uninstall"); ready < 0 || gone < 0 || ready > gone {
		t.Errorf("bigbluebutton ready at event %d, jitsi uninstalled at %d: want ready first", ready, gone)
	}
	if _, ok := toBBB["jitsi"]; ok {
		t.Error("jitsi still installed")
	}
	for _, c := range consumers {
		if toBBB[c] <= before[c] {
			t.Errorf("%s stayed at revision %d: not rewired for BigBlueButton", c, before[c])
		}
	}
	for _, c := range []string{"nextcloud", "collabora"} {
		if toBBB[c] != before[c] {
			t.Errorf("%s went from revision %d to %d; the video swap must not touch it", c, before[c], toBBB[c])
		}
	}
	if realm := bbbRealm(t, e); !strings.Contains(realm, `"clientId": "bigbluebutton"`) || strings.Contains(realm, `"clientId": "jitsi"`) {
		t.Error("the realm does not register exactly the bigbluebutton client for video")
	}
	assertBBBMediaPlacement(t, e, media)
	assertBBBSharedSecret(t, e)
	claim, err := e.cluster.Clientset.CoreV1().PersistentVolumeClaims(e.ns).Get(t.Context(), "demo-bigbluebutton-storage", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Greenlight's claim: %v", err)
	}

	// bigbluebutton → jitsi: Greenlight's claim stays.
	kept, back := e.bbbReconcile(t, e.plan(e.workplaceDir(nil, nil)))
	if ready, gone := e.events.index("demo-jitsi", "ready"), e.events.index("demo-bigbluebutton", "uninstall"); ready < 0 || gone < 0 || ready > gone {
		t.Errorf("jitsi ready at event %d, bigbluebutton uninstalled at %d: want ready first", ready, gone)
	}
	if _, ok := back["bigbluebutton"]; ok {
		t.Error("bigbluebutton still installed")
	}
	for _, c := range consumers {
		if back[c] <= toBBB[c] {
			t.Errorf("%s stayed at revision %d on the swap back: not rewired", c, toBBB[c])
		}
	}
	if want := e.ns + "/demo-bigbluebutton-storage"; !slices.Contains(kept, want) {
		t.Errorf("kept volumes %v, want %s", kept, want)
	}
	if realm := bbbRealm(t, e); !strings.Contains(realm, `"clientId": "jitsi"`) || strings.Contains(realm, `"clientId": "bigbluebutton"`) {
		t.Error("after the swap back the realm does not register exactly the jitsi client for video")
	}
	pods, err := e.cluster.Clientset.CoreV1().Pods(e.ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=demo-bigbluebutton"})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 0 {
		t.Errorf("%d pods of bigbluebutton left after the swap back", len(pods.Items))
	}

	// jitsi → bigbluebutton again: the kept claim is adopted, not replaced.
	e.bbbReconcile(t, e.plan(e.workplaceDir(bbbInClusterSwap, nil)))
	again, err := e.cluster.Clientset.CoreV1().PersistentVolumeClaims(e.ns).Get(t.Context(), "demo-bigbluebutton-storage", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Greenlight's claim after the second swap: %v", err)
	}
	if again.UID != claim.UID {
		t.Errorf("Greenlight's claim was replaced: uid %s → %s", claim.UID, again.UID)
	}
	assertBBBMediaPlacement(t, e, media)
	assertBBBSharedSecret(t, e)
}
