package cluster_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/platzwart/platzwart/e2e/cluster"
)

const image = "registry.k8s.io/pause:3.10"

func podTemplate(app string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name:  "app",
				Image: image,
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU:    resource.MustParse("500m"),
					corev1.ResourceMemory: resource.MustParse("512Mi"),
				}},
			}},
		},
	}
}

func newDeployment(name string, replicas int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: podTemplate(name),
		},
	}
}

// deploymentAvailable reports whether the controller has seen the current
// spec and all replicas are available.
func deploymentAvailable(d *appsv1.Deployment) bool {
	if d.Status.ObservedGeneration < d.Generation || d.Status.AvailableReplicas != *d.Spec.Replicas {
		return false
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func TestDeploymentBecomesAvailable(t *testing.T) {
	t.Parallel()
	c := cluster.FromTest(t)
	ns := c.NewNamespace(t)
	client := kubernetes.NewForConfigOrDie(c.Config())

	if _, err := client.AppsV1().Deployments(ns).Create(t.Context(), newDeployment("web", 2), metav1.CreateOptions{}); err != nil {
		t.Fatalf("create deployment: %v", err)
	}
	waitFor(t, "deployment web Available", time.Minute, func(ctx context.Context) (bool, error) {
		d, err := client.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return deploymentAvailable(d), nil
	})
}

func TestStatefulSetWithVolumeClaimBecomesReady(t *testing.T) {
	t.Parallel()
	c := cluster.FromTest(t)
	ns := c.NewNamespace(t)
	client := kubernetes.NewForConfigOrDie(c.Config())
	ctx := t.Context()

	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone,
			Selector:  map[string]string{"app": "db"},
			Ports:     []corev1.ServicePort{{Name: "db", Port: 5432}},
		},
	}
	if _, err := client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create service: %v", err)
	}
	replicas := int32(1)
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    &replicas,
			ServiceName: "db",
			Selector:    &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
			Template:    podTemplate("db"),
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "data"},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{
						corev1.ResourceStorage: resource.MustParse("1Gi"),
					}},
				},
			}},
		},
	}
	sts.Spec.Template.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
	if _, err := client.AppsV1().StatefulSets(ns).Create(ctx, sts, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create statefulset: %v", err)
	}

	waitFor(t, "statefulset db Ready", time.Minute, func(ctx context.Context) (bool, error) {
		s, err := client.AppsV1().StatefulSets(ns).Get(ctx, "db", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return s.Status.ObservedGeneration >= s.Generation && s.Status.ReadyReplicas == replicas, nil
	})
	pvc, err := client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data-db-0", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get the claim of db-0: %v", err)
	}
	if pvc.Status.Phase != corev1.ClaimBound {
		t.Errorf("claim data-db-0 is %s, want Bound", pvc.Status.Phase)
	}
	if sc := pvc.Spec.StorageClassName; sc == nil || *sc != "kwok-volume" {
		t.Errorf("claim data-db-0 has storage class %v, want the default kwok-volume", sc)
	}
}

func TestJobCompletes(t *testing.T) {
	t.Parallel()
	c := cluster.FromTest(t)
	ns := c.NewNamespace(t)
	client := kubernetes.NewForConfigOrDie(c.Config())

	template := podTemplate("migrate")
	template.Spec.RestartPolicy = corev1.RestartPolicyNever
	backoff := int32(0)
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "migrate"},
		Spec:       batchv1.JobSpec{BackoffLimit: &backoff, Template: template},
	}
	if _, err := client.BatchV1().Jobs(ns).Create(t.Context(), job, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create job: %v", err)
	}
	waitFor(t, "job migrate Complete", time.Minute, func(ctx context.Context) (bool, error) {
		j, err := client.BatchV1().Jobs(ns).Get(ctx, "migrate", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range j.Status.Conditions {
			if c.Status != corev1.ConditionTrue {
				continue
			}
			switch c.Type {
			case batchv1.JobComplete:
				return true, nil
			case batchv1.JobFailed:
				return false, errors.New("job failed: " + c.Message)
			}
		}
		return false, nil
	})
}

// invalidDeployment has a negative replica count, which only the server's
// validation rejects: it is well-formed JSON of the right types.
const invalidDeployment = `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: invalid
spec:
  replicas: -1
  selector:
    matchLabels: {app: invalid}
  template:
    metadata:
      labels: {app: invalid}
    spec:
      containers:
      - name: app
        image: registry.k8s.io/pause:3.10
`

func TestServerSideDryRunRejectsInvalidManifest(t *testing.T) {
	t.Parallel()
	c := cluster.FromTest(t)
	ns := c.NewNamespace(t)
	client := dynamic.NewForConfigOrDie(c.Config())
	deployments := client.Resource(schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}).Namespace(ns)
	dryRun := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}

	var obj unstructured.Unstructured
	if err := yaml.Unmarshal([]byte(invalidDeployment), &obj.Object); err != nil {
		t.Fatalf("decode manifest: %v", err)
	}
	_, err := deployments.Create(t.Context(), &obj, dryRun)
	var status apierrors.APIStatus
	switch {
	case err == nil:
		t.Fatal("dry-run create of a Deployment with replicas -1 succeeded, want 422 Invalid")
	case !errors.As(err, &status) || status.Status().Code != http.StatusUnprocessableEntity:
		t.Fatalf("dry-run create: got %v, want 422 Invalid", err)
	}
	t.Logf("rejected as expected: %v", err)

	// The same manifest made valid passes the dry run and is not persisted.
	if err := unstructured.SetNestedField(obj.Object, int64(1), "spec", "replicas"); err != nil {
		t.Fatalf("fix manifest: %v", err)
	}
	if _, err := deployments.Create(t.Context(), &obj, dryRun); err != nil {
		t.Fatalf("dry-run create of a valid Deployment: %v", err)
	}
	if _, err := deployments.Get(t.Context(), "invalid", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("after a dry run, get deployment: got %v, want NotFound", err)
	}
}

// TestFailJobPods: the pods of Jobs named with the prefix fail (kwok's chaos Stage,
// selected by the label the admission policy adds), and the Job is Failed; other
// Jobs in the namespace complete as before.
func TestFailJobPods(t *testing.T) {
	t.Parallel()
	c := cluster.FromTest(t)
	ns := c.NewNamespace(t)
	client := kubernetes.NewForConfigOrDie(c.Config())
	c.FailJobPods(t, ns, "doomed-")

	job := func(name string) *batchv1.Job {
		backoff := int32(0)
		tmpl := podTemplate(name)
		tmpl.Spec.RestartPolicy = corev1.RestartPolicyNever
		return &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: batchv1.JobSpec{BackoffLimit: &backoff, Template: tmpl}}
	}
	for _, name := range []string{"doomed-migration", "fine-migration"} {
		if _, err := client.BatchV1().Jobs(ns).Create(t.Context(), job(name), metav1.CreateOptions{}); err != nil {
			t.Fatalf("create job %s: %v", name, err)
		}
	}
	state := func(name string) func(ctx context.Context) (bool, error) {
		return func(ctx context.Context) (bool, error) {
			j, err := client.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			for _, c := range j.Status.Conditions {
				if c.Status != corev1.ConditionTrue {
					continue
				}
				switch {
				case c.Type == batchv1.JobFailed && name == "doomed-migration", c.Type == batchv1.JobComplete && name == "fine-migration":
					return true, nil
				case c.Type == batchv1.JobFailed, c.Type == batchv1.JobComplete:
					return false, errors.New("job " + name + " ended " + string(c.Type))
				}
			}
			return false, nil
		}
	}
	waitFor(t, "job doomed-migration Failed", time.Minute, state("doomed-migration"))
	waitFor(t, "job fine-migration Complete", time.Minute, state("fine-migration"))
}
