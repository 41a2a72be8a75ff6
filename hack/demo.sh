#!/usr/bin/env bash
# make demo: what platzwart does today with the example workplace, step by step.
# It validates and renders; it does not deploy (the reconciler is not built yet),
# and it says so.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${PLATZWART:?set by the Makefile}"
: "${CACHE_DIR:?set by the Makefile}"
example=examples/workplace
out="$CACHE_DIR/demo/rendered"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "platzwart version"
"$PLATZWART" version

step "The catalog: one component per capability, swappable"
"$PLATZWART" catalog

step "Validate $example (documents, selection, wiring, charts)"
"$PLATZWART" validate "$example"

step "Render every release without a cluster (Helm SDK, client-only) into $out"
rm -rf "$out"
start=$(date +%s.%N)
"$PLATZWART" render "$example" --output-dir "$out" >/dev/null
end=$(date +%s.%N)
printf 'rendered in %.2fs\n' "$(echo "$end - $start" | bc)"

step "What apply would install, in dependency order"
printf '%-4s %-22s %-10s %s\n' "#" "RELEASE" "RESOURCES" "FILE"
for f in "$out"/demo/*.yaml; do
  n=$(grep -c '^kind:' "$f" || true)
  rel=$(basename "$f" .yaml)
  printf '%-4s %-22s %-10s %s\n' "${rel%%-*}" "${rel#*-}" "$n" "$f"
done

step "Try a swap: video jitsi -> bigbluebutton"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r "$example"/. "$tmp"/
sed -i 's/video: jitsi /video: bigbluebutton /' "$tmp/workplace.yaml"
"$PLATZWART" render "$tmp" --output-dir "$tmp/out" >/dev/null
changed=()
for f in "$tmp"/out/demo/*.yaml; do
  rel=$(basename "$f" .yaml); rel=${rel#*-}
  old=$(ls "$out"/demo/*-"$rel".yaml 2>/dev/null || true)
  if [ -z "$old" ]; then changed+=("$rel (new)"); elif ! cmp -s <(grep -v '^# platzwart:' "$old") <(grep -v '^# platzwart:' "$f"); then changed+=("$rel (changed)"); fi
done
for f in "$out"/demo/*.yaml; do
  rel=$(basename "$f" .yaml); rel=${rel#*-}
  ls "$tmp"/out/demo/*-"$rel".yaml >/dev/null 2>&1 || changed+=("$rel (removed)")
done
printf 'releases whose manifests change: %s\n' "${changed[*]}"

cat <<MSG

Nothing was deployed: this build validates and renders only. The reconciler that
installs these releases into a cluster is the next piece of work (see README.md).
Rendered manifests: $out
MSG
