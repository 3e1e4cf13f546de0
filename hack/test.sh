#!/usr/bin/env bash
# `make test`: everything the suite needs, on a fresh machine, then every check and test.
#
# 1. checks the tools the machine must already have (Rust, Go, openssl, python3);
# 2. builds the control plane from Go modules (cached; seconds on a second run);
# 3. starts it unless it already runs, and stops it at the end if this script started it;
# 4. runs rustfmt, clippy (warnings denied) and the whole cargo test suite, which includes
#    the CRD drift check and the integration tests against the real apiserver and vyos-sim.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*" >&2; }
need() {
  command -v "$1" >/dev/null 2>&1 || { echo "error: '$1' is not installed; $2" >&2; exit 1; }
}
need cargo "install Rust (https://rustup.rs)"
need go "install Go 1.25 or newer; it builds the test control plane"
need openssl "install openssl (apt-get install openssl); it makes the control plane's certificates"
need python3 "install python3; the control-plane script uses it"
need flock "install util-linux (apt-get install util-linux)"
cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
cargo clippy --version >/dev/null 2>&1 || rustup component add clippy

say "building the control plane (cached after the first run)"
hack/control-plane.sh build

if [ -n "${VMNET_TEST_KUBECONFIG:-}" ]; then
  say "using the cluster in VMNET_TEST_KUBECONFIG=$VMNET_TEST_KUBECONFIG"
elif hack/control-plane.sh status >/dev/null 2>&1; then
  say "the control plane already runs; leaving it running afterwards"
else
  say "starting the control plane"
  hack/control-plane.sh up >/dev/null
  trap 'hack/control-plane.sh down' EXIT
fi

# Incremental state is ~3 GiB that a one-off run never reuses; set CARGO_INCREMENTAL=1 to keep it.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

say "cargo fmt --check"
cargo fmt --all --check
say "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
say "cargo test"
cargo test --workspace --locked --no-fail-fast
say "all checks and tests passed"
