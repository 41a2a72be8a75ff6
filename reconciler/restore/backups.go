// Package restore lists the database backups platzwart took before risky upgrade
// steps (the backup Jobs reconciler/release runs) and restores one into its database
// with the PostgreSQL server chart's restore.sh: under the workplace Lease, after
// stopping the Deployments and StatefulSets of the release that owns the database,
// which are brought back afterwards, also when the restore failed.
package restore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/platzwart/platzwart/api/v1alpha1"
	"github.com/platzwart/platzwart/reconciler/backup"
	"github.com/platzwart/platzwart/reconciler/release"
)

// State is where a backup Job is.
type State string

// States of a backup Job.
const (
	// StateComplete: the dump was written and verified; it can be restored.
	StateComplete State = "Complete"
	// StateFailed: the Job failed; there is no dump.
	StateFailed State = "Failed"
	// StateRunning: the Job has not ended yet.
	StateRunning State = "Running"
)

// Backup is one backup Job of a workplace: one database dumped before a risky
// upgrade step of the release that owns it.
type Backup struct {
	// Job is the backup Job's name; Namespace and Workplace where it ran.
	Job       string `json:"job"`
	Namespace string `json:"namespace"`
	Workplace string `json:"workplace"`
	// Release owns the database (the component release whose step it preceded).
	Release string `json:"release"`
	// Database was dumped from the PostgreSQL server release Server.
	Database string `json:"database"`
	Server   string `json:"server"`
	// Version is the component version the step upgraded to ("" when unknown).
	Version string `json:"version,omitempty"`
	// Claim is the PersistentVolumeClaim holding the dump ("" when it went to S3),
	// File the dump's name.
	Claim string `json:"claim,omitempty"`
	File  string `json:"file"`
	// Location is where the dump is kept: the claim, or an object in a bucket.
	Location v1alpha1.BackupLocation `json:"location"`
	// State of the Job; Message says why it failed.
	State   State  `json:"state"`
	Message string `json:"message,omitempty"`
	// Started is when the Job was created, Finished when it completed.
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	// Record is what backup.sh reported in the pod's termination message (size,
	// checksum, entries); nil when the pod reported none, as on a control plane whose
	// nodes run no containers.
	Record *backup.Record `json:"record,omitempty"`

	// pod is the backup Job's pod template: a restore from S3 downloads the object
	// with the settings of its upload container.
	pod *corev1.PodSpec
}

const (
	// backupContainer runs backup.sh in the engine's backup Job (an init container
	// when the dump went to S3).
	backupContainer = "backup"
	// backupsVolume is the volume of the backup claim in backup and restore Jobs,
	// mounted at backupDir.
	backupsVolume = "backups"
	backupDir     = "/backups"
)

// List returns the backup Jobs of a workplace in namespace (of every workplace when
// workplace is ""), oldest first: complete ones with their dump file and, when the
// pod reported it, backup.sh's record; failed and running ones with their state.
// It only reads.
func List(ctx context.Context, cs kubernetes.Interface, namespace, workplace string) ([]Backup, error) {
	selector := release.LabelBackupOf
	if workplace != "" {
		selector += "," + release.LabelWorkplace + "=" + workplace
	}
	jobs, err := cs.BatchV1().Jobs(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, fmt.Errorf("listing backup Jobs in %s: %w", namespace, err)
	}
	// The Job's pods carry its template's labels: one List for every record.
	pods, err := cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, fmt.Errorf("listing the pods of backup Jobs in %s: %w", namespace, err)
	}
	records := map[string]backup.Record{}
	for _, p := range pods.Items {
		if rec, ok := release.PodRecord(&p); ok {
			records[p.Labels[batchv1.JobNameLabel]] = rec
		}
	}
	out := []Backup{}
	for i := range jobs.Items {
		b, ok := FromJob(&jobs.Items[i])
		if !ok {
			continue
		}
		if rec, ok := records[b.Job]; ok && b.State == StateComplete {
			b.Record = &rec
		}
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b Backup) int {
		if c := a.Started.Compare(b.Started); c != 0 {
			return c
		}
		return strings.Compare(a.Job, b.Job)
	})
	return out, nil
}

// FromJob reads a backup from the engine's Job, as List does: the release from its
// label, database and file from backup.sh's environment, the server from PGHOST, the
// location from the pod template's annotation (Jobs made before it existed: the
// claim of its volume), the state from its conditions. A Job labelled as a backup
// without that environment, or with a location that cannot be read, is not one.
func FromJob(j *batchv1.Job) (Backup, bool) {
	spec := j.Spec.Template.Spec
	var c *corev1.Container
	for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for i := range cs {
			if cs[i].Name == backupContainer {
				c = &cs[i]
			}
		}
	}
	if c == nil {
		return Backup{}, false
	}
	env := map[string]string{}
	for _, v := range c.Env {
		if v.ValueFrom == nil {
			env[v.Name] = v.Value
		}
	}
	db, name := env["BACKUP_DATABASE"], env["BACKUP_NAME"]
	if db == "" || name == "" {
		return Backup{}, false
	}
	b := Backup{
		Job: j.Name, Namespace: j.Namespace, Workplace: j.Labels[release.LabelWorkplace],
		Release: j.Labels[release.LabelBackupOf], Database: db, Server: env["PGHOST"],
		Version: j.Labels[release.LabelVersion], Claim: release.BackupClaim(j.Labels[release.LabelWorkplace]),
		File: name + ".dump", Started: j.CreationTimestamp.Time,
	}
	if b.Version == "" {
		b.Version = versionFromName(db, name)
	}
	for _, v := range spec.Volumes {
		if v.Name == backupsVolume && v.PersistentVolumeClaim != nil {
			b.Claim = v.PersistentVolumeClaim.ClaimName
		}
	}
	b.Location = v1alpha1.BackupLocation{Claim: b.Claim}
	if raw, ok := j.Spec.Template.Annotations[release.AnnotationBackupLocation]; ok {
		var loc v1alpha1.BackupLocation
		if err := json.Unmarshal([]byte(raw), &loc); err != nil || (loc.S3 == nil) == (loc.Claim == "") {
			return Backup{}, false
		}
		b.Location, b.Claim = loc, loc.Claim
	}
	b.pod = &j.Spec.Template.Spec
	b.State, b.Message, b.Finished = jobState(j)
	return b, true
}

// versionFromName reads the version from the engine's dump name
// "<database>-before-<version>-<stamp>", for Jobs that do not carry it as a label.
func versionFromName(db, name string) string {
	rest, ok := strings.CutPrefix(name, db+"-before-")
	if !ok {
		return ""
	}
	i := strings.LastIndex(rest, "-")
	if i <= 0 {
		return ""
	}
	return rest[:i]
}

// jobState reads a Job's terminal condition: Complete (with when), Failed (with why)
// or, without either, Running.
func jobState(j *batchv1.Job) (State, string, time.Time) {
	for _, c := range j.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			if j.Status.CompletionTime != nil {
				return StateComplete, "", j.Status.CompletionTime.Time
			}
			return StateComplete, "", c.LastTransitionTime.Time
		case batchv1.JobFailed:
			msg := c.Reason
			if c.Message != "" {
				msg += ": " + c.Message
			}
			return StateFailed, msg, time.Time{}
		}
	}
	return StateRunning, "", time.Time{}
}

// UnknownBackupError says that no backup has the name asked for.
type UnknownBackupError struct {
	// Name asked for; Namespace and Workplace ("" for all) searched.
	Name, Namespace, Workplace string
	// Known are the backups there (Job names).
	Known []string
}

func (e *UnknownBackupError) Error() string {
	where := "namespace " + e.Namespace
	if e.Workplace != "" {
		where = fmt.Sprintf("workplace %s/%s", e.Namespace, e.Workplace)
	}
	if len(e.Known) == 0 {
		return fmt.Sprintf("no backup %q in %s: there are none; nothing was changed", e.Name, where)
	}
	return fmt.Sprintf("no backup %q in %s (known: %s; see platzwart backups -n %s); nothing was changed",
		e.Name, where, strings.Join(e.Known, ", "), e.Namespace)
}

// find returns the backup named by its Job or its dump file (with or without
// ".dump").
func find(list []Backup, name, namespace, workplace string) (Backup, error) {
	var hits []Backup
	for _, b := range list {
		if b.Job == name || b.File == name || b.File == name+".dump" {
			hits = append(hits, b)
		}
	}
	switch len(hits) {
	case 1:
		return hits[0], nil
	case 0:
		known := make([]string, 0, len(list))
		for _, b := range list {
			known = append(known, b.Job)
		}
		return Backup{}, &UnknownBackupError{Name: name, Namespace: namespace, Workplace: workplace, Known: known}
	}
	jobs := make([]string, 0, len(hits))
	for _, b := range hits {
		jobs = append(jobs, b.Job)
	}
	return Backup{}, fmt.Errorf("%q names %d backups (Jobs %s): name the Job; nothing was changed", name, len(hits), strings.Join(jobs, ", "))
}
