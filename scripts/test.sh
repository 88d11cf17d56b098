#!/usr/bin/env bash
# scripts/test.sh: the project's test command (README; run by .ci/run in CI).
#
# Steps (each timed; all run even if an earlier check failed, so one CI run
# reports every problem; exit status is non-zero if any step failed):
#   1. cargo fmt --all -- --check           (cheap static checks first)
#   2. hadolint Dockerfile
#   3. eval "$(scripts/dev-env.sh up)"       real Kafka broker (+ mongo-sim)
#                                            fatal if it fails
#   4. cargo clippy --workspace --all-targets -- -D warnings
#   5. cargo test --workspace                with KAFKA_BOOTSTRAP / MONGODB_URI
#   6. scripts/flink-interop.sh              quickstart pipeline read by Flink
#                                            (Maven, JDK 17; the debug worker)
# scripts/dev-env.sh down runs in an EXIT trap (also on failure / Ctrl-C),
# unless the environment was already running before this script started (a
# developer's long-lived `dev-env.sh up`): then it is left running.
#
# Usage: scripts/test.sh
# Environment: TEST_TIMEOUT (default 50m) bounds `cargo test`, so a hung test
# cannot eat the whole CI budget. Extra args to cargo test: CARGO_TEST_ARGS.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '[test] %s\n' "$*" >&2; }

DEV_ENV_STARTED=0
on_exit() {
  local rc=$?
  if [[ $DEV_ENV_STARTED = 1 ]]; then
    scripts/dev-env.sh down || say "WARNING: scripts/dev-env.sh down failed"
  fi
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

failed=()
summary=()
step() {
  local name=$1 t=$SECONDS rc=0
  shift
  say "==> $name: $*"
  "$@" || rc=$?
  summary+=("$(printf '%-8s %4ss  %s' "$([[ $rc = 0 ]] && echo ok || echo "FAIL($rc)")" $((SECONDS - t)) "$name")")
  if [[ $rc != 0 ]]; then
    failed+=("$name")
    say "<== $name FAILED (exit $rc)"
  fi
}

print_summary() {
  say "summary:"
  printf '  %s\n' "${summary[@]}" >&2
}

step fmt cargo fmt --all -- --check
step hadolint hadolint Dockerfile

say "==> dev-env: scripts/dev-env.sh up"
if [[ -n $(scripts/dev-env.sh env 2>/dev/null) ]]; then
  say "dev environment was already running; it will be left running afterwards"
else
  DEV_ENV_STARTED=1
fi
# A MONGODB_URI given by the caller points the Mongo-facing suites at a real
# replica set. Without one, the suites start their own in-process mongo-sim
# servers, so that the simulator-only fault tests (oplog truncation,
# step-down) run too; the dev-env simulator then serves the quickstart only.
CALLER_MONGODB_URI=${MONGODB_URI:-}
if ! exports=$(scripts/dev-env.sh up); then
  failed+=(dev-env)
  print_summary
  say "FAILED: scripts/dev-env.sh up (see messages above)"
  exit 1
fi
eval "$exports"
export KAFKA_BOOTSTRAP
if [[ -n $CALLER_MONGODB_URI ]]; then
  export MONGODB_URI=$CALLER_MONGODB_URI
else
  unset MONGODB_URI
fi
say "environment: KAFKA_BOOTSTRAP=${KAFKA_BOOTSTRAP:-} MONGODB_URI=${MONGODB_URI:-<not set>}"

step clippy cargo clippy --workspace --all-targets -- -D warnings
# shellcheck disable=SC2086 # CARGO_TEST_ARGS is a list of words
step test timeout --kill-after=60 "${TEST_TIMEOUT:-50m}" cargo test --workspace ${CARGO_TEST_ARGS:-}
# The interop check with a real changelog consumer (Apache Flink, jars from
# Maven Central) runs the worker binary the integration tests just built.
step flink-interop env CONNECTD_BIN="${CARGO_TARGET_DIR:-target}/debug/connectd" \
  timeout --kill-after=30 15m scripts/flink-interop.sh

print_summary
if ((${#failed[@]})); then
  say "FAILED: ${failed[*]}"
  exit 1
fi
say "all checks passed"
