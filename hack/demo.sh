#!/usr/bin/env bash
# make demo: the GitOps loop on the example workplace.
#
#   examples/workplace ──served as a Git repository on loopback──▶ platzwart controller
#        ──▶ Workplace resource ──▶ Helm releases in dependency order ──▶ status
#
# With KUBECONFIG set (for example minikube), it deploys there. Without it, a local
# control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok) is built on
# first use and started; there, pods become Ready at the Kubernetes level but no
# container runs: it shows the reconciler, not Jitsi carrying media.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${PLATZWART:?set by the Makefile}"
: "${CACHE_DIR:?set by the Makefile}"
example=examples/workplace
run="$CACHE_DIR/demo"
mkdir -p "$run"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
stop_pid() { [ -f "$1" ] && kill "$(cat "$1")" 2>/dev/null || true; rm -f "$1"; }

step "platzwart version"
"$PLATZWART" version

step "The catalog: one component per capability, each swappable"
"$PLATZWART" catalog | sed -n 1,11p

step "Validate $example (documents, selection, wiring, every chart renders)"
"$PLATZWART" validate "$example"

if [ -z "${KUBECONFIG:-}" ]; then
  step "No KUBECONFIG given: starting the local control plane (first build ~10-15 min, then seconds)"
  KUBECONFIG=$(GOTOOLCHAIN=auto go run ./e2e/cmd/localcluster up | sed -n 1p)
  export KUBECONFIG
  local_cp=1
else
  step "Using the cluster of KUBECONFIG=$KUBECONFIG"
  local_cp=0
fi

step "Serving $example as a Git repository on loopback"
stop_pid "$run/gitserve.pid"; stop_pid "$run/controller.pid"
rm -rf "$run/git"
GOTOOLCHAIN=auto go build -o "$run/gitserve" ./e2e/cmd/gitserve
"$run/gitserve" -dir "$example" -addr 127.0.0.1:8999 -root "$run/git" >"$run/gitserve.log" 2>&1 &
echo $! >"$run/gitserve.pid"
repo=http://127.0.0.1:8999/workplace.git
for _ in $(seq 50); do git ls-remote "$repo" >/dev/null 2>&1 && break; sleep 0.1; done
echo "$repo (branch main)"

step "Starting the controller: polls every 10s, webhook on 127.0.0.1:9292/hook (logs: $run/controller.log)"
printf 'demo-webhook-secret' >"$run/webhook-secret"
"$PLATZWART" controller --repo "$repo" --branch main --install-crds --interval 10s \
  --webhook-addr 127.0.0.1:9292 --webhook-secret-file "$run/webhook-secret" \
  --metrics-addr 127.0.0.1:9280 --probe-addr 0 --cache-dir "$run/cache" --log-format text \
  >"$run/controller.log" 2>&1 &
echo $! >"$run/controller.pid"

step "Converging"
start=$(date +%s)
for i in $(seq 180); do
  line=$("$PLATZWART" status -n demo 2>/dev/null | sed -n 2p || true)
  ready=$(echo "$line" | awk '{print $2}')
  printf '\r[%3ds] %s' "$(( $(date +%s) - start ))" "${line:-waiting for the Workplace}" | cut -c1-160
  if [ "$ready" = "True" ]; then echo; break; fi
  if ! kill -0 "$(cat "$run/controller.pid")" 2>/dev/null; then echo; tail -n 20 "$run/controller.log"; exit 1; fi
  sleep 1
done

step "platzwart status -n demo"
"$PLATZWART" status -n demo

cat <<MSG

The controller and the Git server keep running. Try a swap, the GitOps way:

  git clone --branch main $repo /tmp/demo-workplace && cd /tmp/demo-workplace
  sed -i 's/video: jitsi /video: bigbluebutton /' workplace.yaml && git commit -qam "video: bigbluebutton" && git push -q
  KUBECONFIG=$KUBECONFIG $PLATZWART status -n demo    # within ~10 s: BigBlueButton in, Jitsi out

Stop everything with: make demo-down
MSG
if [ "$local_cp" = 1 ]; then
  cat <<MSG
This runs on the local control plane: every release is Ready as far as Kubernetes can
tell (Deployments available, Jobs complete, volumes bound), but no container runs.
Proving that the products work (logins, media, documents) needs a real cluster:
see docs/minikube.md.
MSG
fi
