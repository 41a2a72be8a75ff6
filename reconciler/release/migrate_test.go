package release

import (
	"errors"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/platzwart/platzwart/reconciler/catalog"
	"github.com/platzwart/platzwart/reconciler/plan"
)

// TestClaimWithS3: a step whose applying migration mounts the backup claim is refused
// when the backups go to S3 (no claim is made there); the same step with a claim
// target, a migration that does not apply to the step, or one without the claim
// passes.
func TestClaimWithS3(t *testing.T) {
	mounting := func(claim, from string) plan.Migration {
		return plan.Migration{Name: "restore-databases", Phase: catalog.PhasePost, From: from, Job: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			Volumes: []corev1.Volume{{Name: "backups", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}}},
		}}}}
	}
	s3 := catalog.Backups{S3: &catalog.S3Backups{Endpoint: "https://s3.example.org", Bucket: "b", CredentialsSecret: "s"}}
	rel := func(b catalog.Backups, m plan.Migration) *plan.Release {
		return &plan.Release{Name: "demo-postgresql", Workplace: "demo", Version: "18.6", Backups: b, Migrations: []plan.Migration{m}}
	}
	var refused *ClaimWithS3Error
	if err := claimWithS3(rel(s3, mounting("demo-backups", "<18.0.0")), "17.9"); !errors.As(err, &refused) || refused.Migration != "restore-databases" || refused.Claim != "demo-backups" {
		t.Errorf("S3 target, migration on the claim: %v, want a *ClaimWithS3Error", err)
	}
	for name, c := range map[string]struct {
		rel  *plan.Release
		from string
	}{
		"claim target":                 {rel(catalog.Backups{}, mounting("demo-backups", "<18.0.0")), "17.9"},
		"migration does not apply":     {rel(s3, mounting("demo-backups", "<18.0.0")), "18.5"},
		"migration mounts other claim": {rel(s3, mounting("scratch", "")), "17.9"},
	} {
		if err := claimWithS3(c.rel, c.from); err != nil {
			t.Errorf("%s: %v, want nil", name, err)
		}
	}
}
