// Package delivery keeps the deployment history of a workplace and computes delivery
// (DORA) metrics from it: deployment frequency, lead time for changes, change failure
// rate and time to restore. It has two halves:
//
//   - Pure functions over a bounded history ([Record], [Append], [DeploymentFrequency],
//     [LeadTimes], [ChangeFailureRate], [TimesToRestore], [Summarize]). The history
//     lives in the Workplace status, so it survives controller restarts; the functions
//     take the clock as an argument and are deterministic.
//   - Prometheus collectors ([Metrics]) registered on a Registerer the caller passes
//     (controller-runtime's metrics.Registry), never on the global default.
//
// What counts (docs/metrics.md has the same, with PromQL):
//
//   - A deployment is a reconcile that changed at least one release (install, upgrade
//     or uninstall) for a Git revision. The controller appends one [Record] for it,
//     with the revision, its commit time, when applying started and when it ended.
//     A reconcile that changed nothing is not a deployment and is not recorded.
//   - A deployment succeeded when the Workplace became Ready=True with that revision;
//     it failed when it ended Ready=False (a release failed to become ready, was rolled
//     back, or a first install was removed again).
//   - A record that repeats the last one — same revision, same outcome — is not a new
//     deployment: a retry that fails again is merged into the failed record (Attempts
//     counts up, Message is the latest, Finished stays the first failure), and a
//     revision that succeeds again (drift corrected) leaves the history as it is.
//   - A restore is the first successful deployment after one or more failed ones; time
//     to restore runs from the end of the first of those failures to the end of the
//     success. The order of the history decides, not the timestamps, so clock skew
//     between controller replicas cannot reorder it; durations that come out negative
//     because of skew are 0.
package delivery
