// Package secrets generates the Secrets of a workplace once, in the cluster, before any
// release is installed. The plan names every Secret and key (plan.Plan.Secrets); values
// never leave the cluster: this package does not log, return or put into errors any
// secret value.
//
// The data-safety rules [Manager.Ensure] keeps:
//
//   - A Secret that exists is never regenerated and its existing keys are never changed,
//     whoever created it. A key the plan lists but the Secret lacks is added (the Secret
//     heals); the other keys, labels and annotations are left alone. This also holds for
//     a Secret an operator created by hand (without platzwart's labels) to provide a
//     value of their own before the first apply.
//   - A missing Secret is created with values from crypto/rand: an alphanumeric
//     ([A-Za-z0-9]) or lower-case hex string of the key's length (default 32),
//     drawn by rejection sampling so every character is equally likely.
//   - A kubernetes.io/tls Secret gets a fresh self-signed CA and a serving certificate
//     for the plan's DNS names (see [CAValidity] and [CertValidity]), in the keys
//     tls.crt, tls.key and ca.crt. The CA's private key is discarded. A certificate
//     is never regenerated once its Secret exists; renewal is not implemented yet.
//   - Every Secret created carries the labels app.kubernetes.io/managed-by=platzwart,
//     platzwart.io/workplace=<workplace> and platzwart.io/component=<component> (when
//     the Secret belongs to a component), the annotation platzwart.io/generated=true,
//     and the owner reference when one is given.
//   - When every Secret and key exists, Ensure makes no mutating request: one Get of the
//     namespace, one List of the workplace's Secrets by label, and one Get for each
//     planned Secret the List did not return (a hand-made Secret without labels).
//   - The namespace is created (labelled app.kubernetes.io/managed-by=platzwart) if it
//     does not exist. It is never deleted here.
//   - Another writer may race: a Create that finds the Secret already there re-reads it
//     and only adds missing keys; keys are added with a merge patch carrying the
//     resourceVersion that was read, so a concurrent change makes it fail with a
//     conflict, and the Secret is read again instead of being overwritten.
//   - A Secret deleted by hand is created again, with new values, on the next Ensure
//     and reported in [Result.Created], so that the caller can restart its consumers.
package secrets
