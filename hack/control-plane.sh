#!/usr/bin/env bash
# A local Kubernetes control plane for tests and the demo, built from Go modules.
#
#   hack/control-plane.sh build   compile etcd, kube-apiserver, kube-controller-manager,
#                                 kubectl, helm (Helm 3) and helm4 (Helm 4) into the cache
#                                 (Go caches are temporary unless VMNET_KEEP_GO_CACHE=1)
#                                 (idempotent)
#   hack/control-plane.sh up      start etcd, kube-apiserver and kube-controller-manager on
#                                 loopback; print where the kubeconfig is
#   hack/control-plane.sh env     print `export KUBECONFIG=... PATH=...` for a shell to eval
#   hack/control-plane.sh down    stop what `up` started (by process id)
#   hack/control-plane.sh status  say whether it runs
#
# Nothing is downloaded except Go modules through the Go module proxy.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.37.2}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
HELM_VERSION=${HELM_VERSION:-v3.22.0}
# Helm 4, built as `helm4` next to `helm` (the chart is tested with both). Not part of the
# bin directory's name, so adding it to an existing cache builds only helm4.
HELM4_VERSION=${HELM4_VERSION:-v4.3.1}

CACHE=${VMNET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vmnet-operator}
BIN=$CACHE/bin/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-helm-$HELM_VERSION
STATE=${VMNET_CONTROL_PLANE_DIR:-$CACHE/control-plane}
KUBECONFIG_PATH=$STATE/admin.kubeconfig

export GOTOOLCHAIN=local CGO_ENABLED=0
export GOFLAGS="-mod=mod -buildvcs=false"

log() { printf '[control-plane] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# What `up` needs. helm4 is not among them: a cache built before it existed still runs.
have_all() {
  local b
  for b in etcd kube-apiserver kube-controller-manager kubectl helm; do
    [ -x "$BIN/$b" ] || return 1
  done
}

# helm4 is there and is HELM4_VERSION (its version is not in the bin directory's name).
have_helm4() {
  [ -x "$BIN/helm4" ] &&
    [ "$("$BIN/helm4" version --template '{{.Version}}' 2>/dev/null)" = "$HELM4_VERSION" ]
}

build_k8s() {
  local w=$CACHE/src/k8s-$K8S_VERSION sv=v0.${K8S_VERSION#v1.}
  local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  mkdir -p "$w"
  if [ ! -f "$w/.ready" ]; then
    log "preparing the Kubernetes $K8S_VERSION wrapper module"
    rm -f "$w/go.mod" "$w/go.sum"
    (cd "$w" && go mod init vmnet.invalid/k8s-test-bins >/dev/null 2>&1)
    # Derive the staging modules from the real go.mod instead of trusting a list.
    local gomod
    gomod=$(cd "$w" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
    local m
    for m in $(awk '$2=="=>" && $3 ~ /^\.\/staging\//{print $1}' "$gomod"); do
      (cd "$w" && go mod edit -replace="$m=$m@$sv")
    done
    (cd "$w" && go mod edit -require="k8s.io/kubernetes@$K8S_VERSION" &&
      go get k8s.io/kubernetes/cmd/kube-apiserver@"$K8S_VERSION" \
        k8s.io/kubernetes/cmd/kube-controller-manager@"$K8S_VERSION" \
        k8s.io/kubernetes/cmd/kubectl@"$K8S_VERSION")
    touch "$w/.ready"
  fi
  local ld="-s -w" p
  for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    ld="$ld -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  log "building kube-apiserver, kube-controller-manager and kubectl $K8S_VERSION (slow the first time)"
  (cd "$w" && go build -trimpath -ldflags "$ld" -o "$BIN/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kubectl)
}

build_etcd() {
  local w=$CACHE/src/etcd-$ETCD_VERSION
  mkdir -p "$w"
  if [ ! -f "$w/.ready" ]; then
    log "preparing the etcd $ETCD_VERSION wrapper module"
    rm -f "$w/go.mod" "$w/go.sum"
    (cd "$w" && go mod init vmnet.invalid/etcd-bin >/dev/null 2>&1 &&
      go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION")
    touch "$w/.ready"
  fi
  log "building etcd $ETCD_VERSION"
  (cd "$w" && go build -trimpath \
    -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION" \
    -o "$BIN/etcd" go.etcd.io/etcd/server/v3)
}

build_helm() {
  local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  local w=$CACHE/src/helm-$HELM_VERSION
  mkdir -p "$w"
  if [ ! -f "$w/.ready" ]; then
    log "preparing the helm $HELM_VERSION wrapper module"
    rm -f "$w/go.mod" "$w/go.sum"
    (cd "$w" && go mod init vmnet.invalid/helm-bin >/dev/null 2>&1 &&
      go get "helm.sh/helm/v3/cmd/helm@$HELM_VERSION")
    touch "$w/.ready"
  fi
  log "building helm $HELM_VERSION"
  (cd "$w" && go build -trimpath -ldflags "-s -w \
    -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor \
    -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor" \
    -o "$BIN/helm" helm.sh/helm/v3/cmd/helm)
}

build_helm4() {
  local w=$CACHE/src/helm-$HELM4_VERSION
  mkdir -p "$w"
  if [ ! -f "$w/.ready" ]; then
    log "preparing the helm $HELM4_VERSION wrapper module"
    rm -f "$w/go.mod" "$w/go.sum"
    (cd "$w" && go mod init vmnet.invalid/helm4-bin >/dev/null 2>&1 &&
      go get "helm.sh/helm/v4/cmd/helm@$HELM4_VERSION")
    touch "$w/.ready"
  fi
  # Helm 4 has no link-time Kubernetes version (Helm 3's chartutil/lint k8sVersion*): its
  # default (`helm template`, `helm lint`) is 1.<minor of the k8s.io/client-go it is built
  # with>, read from the binary's build info. Say so when that is not K8S_VERSION's minor.
  local minor=${K8S_VERSION#v1.} cg
  minor=${minor%%.*}
  cg=$(cd "$w" && go list -m -f '{{.Version}}' k8s.io/client-go)
  cg=${cg#v0.}; cg=${cg%%.*}
  [ "$cg" = "$minor" ] ||
    log "note: helm4's default Kubernetes version is 1.$cg (its client-go), not 1.$minor"
  log "building helm $HELM4_VERSION as helm4"
  (cd "$w" && go build -trimpath -ldflags "-s -w \
    -X helm.sh/helm/v4/internal/version.version=$HELM4_VERSION" \
    -o "$BIN/helm4" helm.sh/helm/v4/cmd/helm)
}

# Go module caches are read-only on disk; make them writable so rm can remove them.
drop_go_tmp() {
  [ -d "$1" ] || return 0
  chmod -R u+w "$1" 2>/dev/null || true
  rm -rf "$1"
}

cmd_build() {
  command -v go >/dev/null || die "Go is not installed; it is needed to build the control plane"
  if have_all && have_helm4; then
    log "binaries present in $BIN"
    return 0
  fi
  mkdir -p "$BIN"
  local start=$SECONDS
  # Kubernetes' build leaves ~5.5 GiB of Go build cache and ~1.5 GiB of modules behind, enough
  # to fill a small CI disk next to the Rust build. Build with throwaway caches and remove them
  # afterwards (VMNET_KEEP_GO_CACHE=1 builds with the user's own caches instead).
  if [ -z "${VMNET_KEEP_GO_CACHE:-}" ]; then
    local tmp=$CACHE/go-tmp
    export GOCACHE=$tmp/build GOMODCACHE=$tmp/mod
    trap 'drop_go_tmp "'"$tmp"'"' EXIT
  fi
  [ -x "$BIN/etcd" ] || build_etcd
  [ -x "$BIN/kube-apiserver" ] && [ -x "$BIN/kube-controller-manager" ] && [ -x "$BIN/kubectl" ] || build_k8s
  [ -x "$BIN/helm" ] || build_helm
  have_helm4 || build_helm4
  have_all && have_helm4 || die "the build finished but binaries are missing from $BIN"
  log "built in $((SECONDS - start)) s into $BIN"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

is_running() {
  local f=$STATE/$1.pid
  [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null
}

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local limit=$1 what=$2; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
}

make_pki() {
  local P=$STATE/pki
  mkdir -p "$P"
  (
    cd "$P"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
      -subj "/CN=vmnet-test-ca" -keyout ca.key -out ca.crt 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\nbasicConstraints=critical,CA:FALSE\n' >srv.ext
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=kube-apiserver" \
      -keyout apiserver.key -out apiserver.csr 2>/dev/null
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
      -extfile srv.ext -out apiserver.crt 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\nbasicConstraints=critical,CA:FALSE\n' >cli.ext
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/O=system:masters/CN=admin" \
      -keyout admin.key -out admin.csr 2>/dev/null
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
      -extfile cli.ext -out admin.crt 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  )
}

write_kubeconfig() {
  local P=$STATE/pki ap=$1
  python3 - "$KUBECONFIG_PATH" "$ap" "$P" <<'PY'
import base64, sys
path, port, pki = sys.argv[1], sys.argv[2], sys.argv[3]
b64 = lambda f: base64.b64encode(open(f"{pki}/{f}", "rb").read()).decode()
open(path, "w").write(f"""apiVersion: v1
kind: Config
clusters:
- name: vmnet-local
  cluster:
    server: https://127.0.0.1:{port}
    certificate-authority-data: {b64("ca.crt")}
users:
- name: admin
  user:
    client-certificate-data: {b64("admin.crt")}
    client-key-data: {b64("admin.key")}
contexts:
- name: vmnet-local
  context:
    cluster: vmnet-local
    user: admin
current-context: vmnet-local
""")
PY
  chmod 600 "$KUBECONFIG_PATH"
}

cmd_up() {
  mkdir -p "$CACHE"
  # Several test processes may call `up` at once: one starts, the others wait and reuse it.
  # The daemons below are started with fd 9 closed, or they would hold the lock for ever.
  exec 9>"$CACHE/control-plane.lock"
  flock 9
  have_all || die "control-plane binaries are missing from $BIN; run: hack/control-plane.sh build (or: make control-plane)"
  if is_running kube-apiserver; then
    log "already running; kubeconfig: $KUBECONFIG_PATH"
    echo "$KUBECONFIG_PATH"
    return 0
  fi
  cmd_down >/dev/null 2>&1 || true
  rm -rf "$STATE"
  mkdir -p "$STATE"
  make_pki
  local ep ap
  ep=$(free_port)
  ap=$(free_port)
  local data=$STATE/etcd
  if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    data=$(mktemp -d /dev/shm/vmnet-etcd.XXXXXX)
    echo "$data" >"$STATE/etcd-data-dir"
  fi
  log "starting etcd on 127.0.0.1:$ep"
  "$BIN/etcd" --data-dir="$data" \
    --listen-client-urls="http://127.0.0.1:$ep" --advertise-client-urls="http://127.0.0.1:$ep" \
    --listen-peer-urls=http://127.0.0.1:0 --unsafe-no-fsync=true --log-level=warn \
    >"$STATE/etcd.log" 2>&1 9>&- &
  echo $! >"$STATE/etcd.pid"
  wait_for 30 etcd curl -fs "http://127.0.0.1:$ep/health" ||
    { tail -n 30 "$STATE/etcd.log" >&2; die "etcd did not become healthy (log: $STATE/etcd.log)"; }

  log "starting kube-apiserver on 127.0.0.1:$ap"
  local P=$STATE/pki
  "$BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ep" \
    --bind-address=127.0.0.1 --secure-port="$ap" \
    --advertise-address=127.0.0.1 --endpoint-reconciler-type=none \
    --cert-dir="$P" --tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key" \
    --client-ca-file="$P/ca.crt" \
    --service-cluster-ip-range=10.0.0.0/24 \
    --service-account-issuer="https://127.0.0.1:$ap/" \
    --service-account-key-file="$P/sa.pub" --service-account-signing-key-file="$P/sa.key" \
    --authorization-mode=RBAC \
    --disable-admission-plugins=ServiceAccount \
    --allow-privileged=true --profiling=false \
    >"$STATE/apiserver.log" 2>&1 9>&- &
  echo $! >"$STATE/kube-apiserver.pid"
  write_kubeconfig "$ap"
  wait_for 120 kube-apiserver curl -fsk "https://127.0.0.1:$ap/readyz" ||
    { tail -n 40 "$STATE/apiserver.log" >&2; die "kube-apiserver did not become ready (log: $STATE/apiserver.log)"; }
  wait_for 30 "namespace default" "$BIN/kubectl" --kubeconfig="$KUBECONFIG_PATH" get ns default ||
    die "namespace default never appeared"

  log "starting kube-controller-manager (garbage collector, namespace, clusterrole aggregation)"
  "$BIN/kube-controller-manager" \
    --kubeconfig="$KUBECONFIG_PATH" \
    --controllers=garbage-collector-controller,namespace-controller,clusterrole-aggregation-controller \
    --leader-elect=false --secure-port=0 --use-service-account-credentials=false \
    >"$STATE/controller-manager.log" 2>&1 9>&- &
  echo $! >"$STATE/kube-controller-manager.pid"
  sleep 1
  is_running kube-controller-manager ||
    { tail -n 30 "$STATE/controller-manager.log" >&2; die "kube-controller-manager exited (log: $STATE/controller-manager.log)"; }

  log "ready; kubeconfig: $KUBECONFIG_PATH"
  echo "$KUBECONFIG_PATH"
}

cmd_down() {
  local name pid stopped=0
  for name in kube-controller-manager kube-apiserver etcd; do
    local f=$STATE/$name.pid
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      stopped=$((stopped + 1))
    fi
    rm -f "$f"
  done
  if [ -f "$STATE/etcd-data-dir" ]; then
    rm -rf "$(cat "$STATE/etcd-data-dir")"
    rm -f "$STATE/etcd-data-dir"
  fi
  log "stopped $stopped process(es)"
}

cmd_env() {
  echo "export KUBECONFIG=$KUBECONFIG_PATH"
  echo "export PATH=$BIN:\$PATH"
}

cmd_status() {
  if is_running kube-apiserver; then
    echo "running; kubeconfig: $KUBECONFIG_PATH"
  else
    echo "not running"
    return 1
  fi
}

case "${1:-}" in
  build) cmd_build ;;
  up) cmd_up ;;
  down) cmd_down ;;
  env) cmd_env ;;
  status) cmd_status ;;
  bin-dir) echo "$BIN" ;;
  *) echo "usage: $0 build|up|down|env|status|bin-dir" >&2; exit 2 ;;
esac
