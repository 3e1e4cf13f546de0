#!/usr/bin/env bash
# `make demo`: the local control plane with the CRDs and examples/ applied.
#
# Runs in the foreground; Ctrl-C (or DEMO_EXIT=1, for scripts) stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*" >&2; }

hack/control-plane.sh build
started_cp=0
if ! hack/control-plane.sh status >/dev/null 2>&1; then
  hack/control-plane.sh up >/dev/null
  started_cp=1
fi
cleanup() {
  say "stopping"
  if [ "$started_cp" = 1 ]; then hack/control-plane.sh down; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

eval "$(hack/control-plane.sh env)"

say "installing the CRDs"
kubectl apply --server-side -f crds/
kubectl wait --for=condition=Established --timeout=60s -f crds/

say "applying examples/"
kubectl apply --server-side -f examples/

say "kubectl get vmnet -A"
kubectl get vmnet -A

cat >&2 <<MSG

The control plane is up. In another shell:
  eval "\$(hack/control-plane.sh env)"
  kubectl get vmnet -A
  kubectl explain portrule.spec
MSG
if [ "${DEMO_EXIT:-0}" = 1 ]; then exit 0; fi
say "Ctrl-C stops the demo"
while true; do sleep 3600 & wait $!; done
