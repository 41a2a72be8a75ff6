#!/usr/bin/env bash
# make demo: the example workplace, deployed.
# With KUBECONFIG set (for example minikube), platzwart deploys there. Without it,
# a local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok)
# is built on first use and started; there, pods become Ready at the Kubernetes level
# but no container runs: it shows the reconciler, not Jitsi carrying media.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${PLATZWART:?set by the Makefile}"
example=examples/workplace

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "platzwart version"
"$PLATZWART" version

step "The catalog: one component per capability, each swappable"
"$PLATZWART" catalog | head -n 12

step "Validate $example (documents, selection, wiring, every chart renders)"
"$PLATZWART" validate "$example"

if [ -z "${KUBECONFIG:-}" ]; then
  step "No KUBECONFIG given: starting the local control plane (first build ~15 min, then seconds)"
  kubeconfig=$(GOTOOLCHAIN=auto go run ./e2e/cmd/localcluster up | head -n 1)
  export KUBECONFIG="$kubeconfig"
  local_cp=1
else
  step "Using the cluster of KUBECONFIG=$KUBECONFIG"
  local_cp=0
fi

step "platzwart plan: what apply would change"
"$PLATZWART" plan "$example"

step "platzwart apply: install in dependency order, wait until ready"
"$PLATZWART" apply "$example"

step "platzwart apply again: nothing changed, nothing done"
"$PLATZWART" apply "$example" 2>/dev/null | tail -n 1

step "Try the swap (video: jitsi -> bigbluebutton) as a plan, without applying it"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r "$example"/. "$tmp"/
sed -i 's/video: jitsi /video: bigbluebutton /' "$tmp/workplace.yaml"
"$PLATZWART" plan "$tmp"

step "platzwart status -n demo"
"$PLATZWART" status -n demo

cat <<MSG

Done. To swap for real: edit $example/workplace.yaml (video: bigbluebutton), then
  KUBECONFIG=$KUBECONFIG $PLATZWART apply $example
MSG
if [ "$local_cp" = 1 ]; then
  cat <<MSG
This ran on the local control plane: every release is Ready as far as Kubernetes can
tell (Deployments available, Jobs complete, volumes bound), but no container ran.
Proving that the products work (logins, media, documents) needs a real cluster:
see docs/minikube.md. Stop the control plane with: make cluster-down
MSG
fi
