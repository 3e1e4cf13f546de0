#!/usr/bin/env bash
# `make demo`: the whole story on one machine. The local control plane, vyos-sim playing
# the router (plain HTTP on 127.0.0.1:18443, as examples/00-router.yaml says), the operator,
# examples/ applied; waits until everything is Ready, then prints each VM's endpoints and
# the router's NAT rules.
#
# Runs in the foreground; Ctrl-C (or DEMO_EXIT=1, for scripts) stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*" >&2; }

SIM_ADDR=127.0.0.1:18443
SIM_ADMIN=127.0.0.1:18444
ADMIN_ADDR=127.0.0.1:18080
RUN_DIR=${TMPDIR:-/tmp}/vmnet-demo
mkdir -p "$RUN_DIR"

hack/control-plane.sh build
say "building vyos-sim and the operator"
cargo build --locked -q -p vyos-sim -p vmnet-operator
BIN=target/debug

started_cp=0
pids=()
applied=0
cleanup() {
  say "stopping"
  if [ "$applied" = 1 ]; then
    # While the operator still runs, so its finalizers take the rules off the router and
    # nothing is left behind in the cluster.
    kubectl delete --ignore-not-found --wait=true --timeout=60s -f examples/extras/ >/dev/null 2>&1 || true
    kubectl delete --ignore-not-found --wait=true --timeout=60s -f examples/ >/dev/null 2>&1 || true
  fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "$started_cp" = 1 ]; then hack/control-plane.sh down; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! hack/control-plane.sh status >/dev/null 2>&1; then
  hack/control-plane.sh up >/dev/null
  started_cp=1
fi
eval "$(hack/control-plane.sh env)"

say "starting vyos-sim on $SIM_ADDR (admin: $SIM_ADMIN)"
"$BIN/vyos-sim" --listen "$SIM_ADDR" --plain-http --api-key demo-key-change-me \
  --admin-listen "$SIM_ADMIN" --state "$RUN_DIR/vyos-sim-state.json" \
  >"$RUN_DIR/vyos-sim.log" 2>&1 &
pids+=($!)

say "installing the CRDs"
# --force-conflicts: the CRDs may have been installed by the tests (field manager
# vmnet-testkit) on this same control plane; the demo takes them over.
kubectl apply --server-side --force-conflicts -f crds/ >/dev/null
kubectl wait --for=condition=Established --timeout=60s -f crds/ >/dev/null

say "starting the operator (log: $RUN_DIR/operator.log, metrics: http://$ADMIN_ADDR/metrics)"
"$BIN/vmnet-operator" run --admin-addr "$ADMIN_ADDR" --lease-namespace default \
  --backup-namespace vmnet-system --drift-interval 30s >"$RUN_DIR/operator.log" 2>&1 &
pids+=($!)

# What a person sets up on a router once: a DHCP subnet for the lab, and a forward filter
# that drops what no rule accepts (examples/extras/dhcp-vmnetwork.yaml says it as `set`
# lines).
for _ in $(seq 50); do
  curl -fsS -o /dev/null "http://$SIM_ADMIN/counters" 2>/dev/null && break
  sleep 0.2
done
curl -fsS -X POST "http://$SIM_ADMIN/edit" -H 'content-type: application/json' \
  --data-binary @hack/demo-router.json

say "applying examples/ and examples/extras/"
applied=1
kubectl apply --server-side -f examples/
kubectl apply --server-side -f examples/extras/

say "waiting until every object is Ready"
if ! {
  kubectl wait --for=condition=Ready --timeout=120s vyosrouter/edge-1 ippool/lab-v4 portpool/edge-1-public &&
    kubectl wait --for=condition=Ready --timeout=120s -n lab vmnetwork --all &&
    kubectl wait --for=condition=Ready --timeout=120s -n lab portrule --all
}; then
  say "not Ready in time; the operator's log ends with:"
  tail -n 30 "$RUN_DIR/operator.log" >&2
  exit 1
fi

say "kubectl get vmnet -A"
kubectl get vmnet -A

say "each VM's endpoints"
kubectl get vmnetwork -n lab -o custom-columns='VM:.metadata.name,ADDRESS:.status.address,ENDPOINTS:.status.endpoints'

say "the router's destination-NAT rules (vyos-sim, as VyOS's showConfig renders them)"
curl -fsS -X POST "http://$SIM_ADDR/retrieve" \
  --form-string data='{"op": "showConfig", "path": ["nat", "destination"]}' \
  --form-string key=demo-key-change-me | python3 -m json.tool

cat >&2 <<MSG

Everything is up. In another shell:
  eval "\$(hack/control-plane.sh env)"
  kubectl get vmnet -A
  kubectl describe vmnetwork -n lab web-1
  curl -s http://$ADMIN_ADDR/metrics | grep '^vmnet_'
  # edit the router behind the operator's back, and watch it repaired within 30 s:
  curl -s -X POST http://$SIM_ADMIN/edit -H 'content-type: application/json' \\
    -d '[{"op":"delete","path":["nat","destination","rule","<number>"]}]'
MSG
if [ "${DEMO_EXIT:-0}" = 1 ]; then exit 0; fi
say "Ctrl-C stops the demo"
while true; do sleep 3600 & wait $!; done
