package secrets

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/platzwart/platzwart/reconciler/catalog"
	"github.com/platzwart/platzwart/reconciler/contract"
	"github.com/platzwart/platzwart/reconciler/plan"
)

// Annotations a rotation leaves on a Secret (never a value).
const (
	// AnnotationRotatedAt is the time of the last rotation (RFC 3339, UTC).
	AnnotationRotatedAt = "platzwart.io/rotated-at"
	// AnnotationRotationReason says why it was rotated.
	AnnotationRotationReason = "platzwart.io/rotation-reason"
)

// EventReasonRotated is the reason of the Event recorded on a rotated Secret.
const EventReasonRotated = "SecretRotated"

// Rotation is one Secret rotated: names and the reason, never values.
type Rotation struct {
	// Secret and the Component it belongs to.
	Secret    string `json:"secret"`
	Component string `json:"component,omitempty"`
	// Keys whose values were replaced, sorted.
	Keys []string `json:"keys"`
	// Reason given for the rotation.
	Reason string `json:"reason"`
}

// Reprovisioned reports whether a new value of a planned Secret rolls out without a
// lockout: a consumer's database password (the PostgreSQL provisioning hook sets it),
// a consumer's OIDC client secret (the identity provider's configuration hook sets
// it), and a component's own Secret that the component declares taken up on every
// start (catalog.TakenUpStart; PostgreSQL's superuser password, say, which the chart
// sets before the server starts). Other component Secrets (a bootstrap admin password,
// a key encrypting stored data) are read only when the component first initialises:
// a new value locks it out.
func Reprovisioned(p *plan.Plan, s plan.Secret) bool {
	if s.Component == "" {
		return false
	}
	if s.TakenUp == catalog.TakenUpStart {
		return true
	}
	rel := contract.ReleaseName(p.Workplace, s.Component)
	if s.Name == contract.OIDCClientSecret(rel).Name {
		return true
	}
	return isDatabasePassword(rel, s)
}

func isDatabasePassword(rel string, s plan.Secret) bool {
	db, ok := strings.CutPrefix(s.Name, rel+"-db-")
	return ok && db != "" && s.Name == contract.DatabasePasswordSecret(rel, db).Name
}

// Select returns the planned Secrets of component, or the one named secret of it.
// Unless force is set, only Secrets platzwart re-provisions on every upgrade are
// selected ([Reprovisioned]); naming another one is an error saying why. It fails
// naming what exists when nothing matches.
func Select(p *plan.Plan, component, secret string, force bool) ([]plan.Secret, error) {
	var of []plan.Secret
	for _, s := range p.Secrets {
		if s.Component == component {
			of = append(of, s)
		}
	}
	if len(of) == 0 {
		var comps []string
		for _, s := range p.Secrets {
			if s.Component != "" && !slices.Contains(comps, s.Component) {
				comps = append(comps, s.Component)
			}
		}
		slices.Sort(comps)
		return nil, fmt.Errorf("workplace %s/%s: component %q has no generated Secrets (components with some: %s)",
			p.Namespace, p.Workplace, component, strings.Join(comps, ", "))
	}
	if secret == "" {
		if force {
			return of, nil
		}
		var other []string
		var out []plan.Secret
		for _, s := range of {
			if Reprovisioned(p, s) {
				out = append(out, s)
			} else {
				other = append(other, s.Name)
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("workplace %s/%s: component %q has no Secret platzwart re-provisions on upgrade (%s are taken up by the component itself, possibly only when it first starts: rotating them can lock it out; name one with --secret and --force if you know it is safe)",
				p.Namespace, p.Workplace, component, strings.Join(other, ", "))
		}
		return out, nil
	}
	var names []string
	for _, s := range of {
		if s.Name != secret {
			names = append(names, s.Name)
			continue
		}
		if !force && !Reprovisioned(p, s) {
			return nil, fmt.Errorf("workplace %s/%s: Secret %q is component %q's own and taken up by the component itself, possibly only when it first starts (a bootstrap admin password, a key): rotating it can lock the component out; rotate it with the component's own procedure, or pass --force if you know the component takes the new value on restart",
				p.Namespace, p.Workplace, secret, component)
		}
		return []plan.Secret{s}, nil
	}
	return nil, fmt.Errorf("workplace %s/%s: component %q has no generated Secret %q (it has: %s)",
		p.Namespace, p.Workplace, component, secret, strings.Join(names, ", "))
}

// Rotate replaces every value of each given Secret with a freshly generated one (a
// new certificate for a TLS Secret), records the time and reason as annotations and an
// Event on the Secret, and returns what it rotated. Only Secrets platzwart generated
// (annotation platzwart.io/generated=true) are rotated: a Secret made by hand, or
// missing, is an error and nothing is rotated. The update carries the resourceVersion
// that was read, so a concurrent change fails instead of being overwritten.
//
// Rotation only writes the Secrets; the reconcile that follows rolls them out: the
// releases referencing them get a new digest (see [WithVersions]), so providers re-run
// their provisioning hooks and consumers' pods roll, in dependency order.
func (m *Manager) Rotate(ctx context.Context, p *plan.Plan, which []plan.Secret, reason string) ([]Rotation, error) {
	if err := checkPlan(p); err != nil {
		return nil, err
	}
	if strings.TrimSpace(reason) == "" {
		return nil, errors.New("secrets: a rotation needs a reason")
	}
	cur := make([]*corev1.Secret, len(which))
	for i, s := range which {
		got, err := m.getSecret(ctx, p.Namespace, s.Name)
		switch {
		case err != nil:
			return nil, fmt.Errorf("secret %q in namespace %q: %w", s.Name, p.Namespace, err)
		case got == nil:
			return nil, fmt.Errorf("secret %q in namespace %q does not exist: apply the workplace first", s.Name, p.Namespace)
		case got.Annotations[AnnotationGenerated] != "true":
			return nil, fmt.Errorf("secret %q in namespace %q was not generated by platzwart (no %s=true): rotate it where it was made", s.Name, p.Namespace, AnnotationGenerated)
		}
		cur[i] = got
	}
	var out []Rotation
	now := time.Now().UTC()
	for i, s := range which {
		keys, _ := missingKeys(s, nil) // every key of the plan
		data, err := generateData(p, s, keys)
		if err != nil {
			return out, fmt.Errorf("secret %q: %w", s.Name, err)
		}
		obj := cur[i].DeepCopy()
		for k, v := range data {
			if obj.Data == nil {
				obj.Data = map[string][]byte{}
			}
			obj.Data[k] = v
		}
		if obj.Annotations == nil {
			obj.Annotations = map[string]string{}
		}
		obj.Annotations[AnnotationRotatedAt] = now.Format(time.RFC3339)
		obj.Annotations[AnnotationRotationReason] = reason
		updated, err := m.Client.CoreV1().Secrets(p.Namespace).Update(ctx, obj, metav1.UpdateOptions{FieldManager: m.fieldOwner()})
		if err != nil {
			if apierrors.IsConflict(err) {
				return out, fmt.Errorf("secret %q changed while it was being rotated; nothing of it was changed, run again: %w", s.Name, err)
			}
			return out, fmt.Errorf("secret %q: rotate: %w", s.Name, err)
		}
		rotated := sortedKeys(data)
		out = append(out, Rotation{Secret: s.Name, Component: s.Component, Keys: rotated, Reason: reason})
		m.recordRotation(ctx, updated, rotated, reason, now)
	}
	return out, nil
}

// recordRotation writes an Event on the rotated Secret. An Event that cannot be written
// does not undo the rotation: the annotations record it as well.
func (m *Manager) recordRotation(ctx context.Context, s *corev1.Secret, keys []string, reason string, at time.Time) {
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: s.Name + ".rotated-", Namespace: s.Namespace},
		InvolvedObject: corev1.ObjectReference{
			Kind: "Secret", APIVersion: "v1", Namespace: s.Namespace, Name: s.Name,
			UID: s.UID, ResourceVersion: s.ResourceVersion,
		},
		Reason:         EventReasonRotated,
		Message:        fmt.Sprintf("keys %s rotated: %s", strings.Join(keys, ", "), reason),
		Type:           corev1.EventTypeNormal,
		Source:         corev1.EventSource{Component: m.fieldOwner()},
		FirstTimestamp: metav1.NewTime(at),
		LastTimestamp:  metav1.NewTime(at),
		Count:          1,
	}
	_, _ = m.Client.CoreV1().Events(s.Namespace).Create(ctx, ev, metav1.CreateOptions{FieldManager: m.fieldOwner()})
}
