#!/usr/bin/env bash
# `make e2e`: the end-to-end suite on a real Kubernetes node built on this machine.
#   1. toolchain   etcd, kube-apiserver, kubelet, kube-controller-manager, kube-scheduler (built
#                  once per version, test/k8s/build.sh --node), kubectl and helm
#   2. images      the Airlock image (make image) and the agent image, saved for containerd
#   3. node        test/e2e/node.sh up: the node, Ready
#   4. import      both images into the node's containerd
#   5. suite       mocha test/e2e/*.e2e.ts against the node's kubeconfig
#   6. teardown    test/e2e/node.sh down, then a check that nothing of it is left (also on failure)
# Prints how long each phase took and ends with `N passed, N failed`.
#
# Against another cluster (kind in CI): AIRLOCK_E2E_KUBECONFIG=PATH AIRLOCK_E2E_IMAGE=REF
# AIRLOCK_E2E_AGENT_IMAGE=REF [AIRLOCK_E2E_PULL_POLICY=IfNotPresent] test/e2e/run.sh: phases 2-4
# and 6 are skipped; the images must already be loaded into the cluster.
# AIRLOCK_E2E_KEEP=1 leaves the node running after the suite (test/e2e/node.sh down stops it).
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
export PATH="$root/node_modules/.bin:$PATH"
t_all=$SECONDS
phase_start=$SECONDS
phase() {
  echo "e2e: $1 ($((SECONDS - phase_start)) s)"
  phase_start=$SECONDS
}
summary() { # summary PASSED FAILED
  echo "e2e: done in $((SECONDS - t_all)) s"
  echo "$1 passed, $2 failed"
}
abort() {
  echo "e2e: $*" >&2
  summary 0 1
  exit 1
}

own_node=0
[ -n "${AIRLOCK_E2E_KUBECONFIG:-}" ] || own_node=1
if [ "$own_node" = 1 ] && [ "$(id -u)" != 0 ]; then
  abort "the local node needs root (network, mounts, containerd, kubelet); or point AIRLOCK_E2E_KUBECONFIG at a cluster"
fi

teardown() {
  [ "$own_node" = 1 ] || return 0
  if [ "${AIRLOCK_E2E_KEEP:-0}" = 1 ]; then
    echo "e2e: node left running (AIRLOCK_E2E_KEEP=1): test/e2e/node.sh down stops it"
    return 0
  fi
  phase_start=$SECONDS
  test/e2e/node.sh down >/dev/null 2>"${logs:-/tmp}/node-down.err" || true
  if test/e2e/node.sh check-clean; then
    phase "teardown: node stopped"
  else
    echo "e2e: teardown left state behind (above)" >&2
    cleanup_failed=1
  fi
}
cleanup_failed=0
suite_pid=
interrupted() {
  trap - INT TERM
  echo "e2e: interrupted; stopping the suite and the node" >&2
  [ -z "$suite_pid" ] || kill "$suite_pid" 2>/dev/null
  teardown
  trap - EXIT
  summary 0 1
  exit 130
}
trap 'teardown' EXIT
trap 'interrupted' INT TERM

logs=$(mktemp -d /tmp/airlock-e2e-logs.XXXXXX)

# 1. toolchain
tools=$(test/k8s/build.sh "$([ "$own_node" = 1 ] && echo --node || echo --tools)") || abort "could not provide the Kubernetes binaries (above)"
KUBECTL=$(sed -n 's/^KUBECTL=//p' <<<"$tools")
HELM=$(sed -n 's/^HELM=//p' <<<"$tools")
phase "toolchain: kubectl, helm$([ "$own_node" = 1 ] && echo ", etcd, kube-apiserver, kubelet, kube-controller-manager, kube-scheduler") ready"

if [ "$own_node" = 1 ]; then
  # 2. images
  images=$(test/e2e/images.sh) || abort "could not build the images (above)"
  AIRLOCK_E2E_IMAGE=$(sed -n 's/^AIRLOCK_IMAGE=//p' <<<"$images")
  AIRLOCK_E2E_AGENT_IMAGE=$(sed -n 's/^AGENT_IMAGE=//p' <<<"$images")
  phase "images: $AIRLOCK_E2E_IMAGE, $AIRLOCK_E2E_AGENT_IMAGE"
  # 3. node
  node=$(test/e2e/node.sh up) || abort "the node did not come up (above; logs in /var/tmp/airlock-e2e-node/logs)"
  AIRLOCK_E2E_KUBECONFIG=$(sed -n 's/^KUBECONFIG=//p' <<<"$node")
  phase "node: Ready"
  # 4. import
  test/e2e/node.sh import "$(sed -n 's/^AIRLOCK_TAR=//p' <<<"$images")" "$(sed -n 's/^AGENT_TAR=//p' <<<"$images")" ||
    abort "could not import the images"
  phase "images imported into containerd"
fi

# 5. suite
export AIRLOCK_E2E_KUBECONFIG AIRLOCK_E2E_IMAGE AIRLOCK_E2E_AGENT_IMAGE
export AIRLOCK_E2E_KUBECTL=$KUBECTL AIRLOCK_E2E_HELM=$HELM AIRLOCK_E2E_HELM_HOME=$logs/helm
export AIRLOCK_E2E_PULL_POLICY=${AIRLOCK_E2E_PULL_POLICY:-Never}
export AIRLOCK_E2E_PROMETHEUS=${AIRLOCK_E2E_PROMETHEUS:-$(command -v prometheus || true)}
export AIRLOCK_E2E_PROMTOOL=${AIRLOCK_E2E_PROMTOOL:-$(command -v promtool || true)}
mkdir -p "$AIRLOCK_E2E_HELM_HOME"
report=$logs/mocha.txt
# In the background, so that a signal reaches the trap at once (bash runs traps only between
# commands, and `wait` is one that a signal interrupts).
node_modules/.bin/mocha --no-config --require test/helpers/root-hooks.ts --extension ts --timeout 600000 \
  --reporter spec 'test/e2e/*.e2e.ts' >"$report" 2>&1 &
suite_pid=$!
tail -n +1 -f --pid "$suite_pid" "$report" &
tail_pid=$!
wait "$suite_pid"
suite_pid=
wait "$tail_pid"
passed=$(grep -Eo '^ +[0-9]+ passing' "$report" | grep -Eo '[0-9]+' || echo 0)
failed=$(grep -Eo '^ +[0-9]+ failing' "$report" | grep -Eo '[0-9]+' || echo 0)
pending=$(grep -Eo '^ +[0-9]+ pending' "$report" | grep -Eo '[0-9]+' || echo 0)
[ "$passed" != 0 ] || [ "$failed" != 0 ] || failed=1
failed=$((failed + pending))
phase "suite: $passed passed, $failed failed"
if [ "$failed" != 0 ]; then
  for f in /var/tmp/airlock-e2e-node/logs/*.log; do
    [ -f "$f" ] && cp "$f" "$logs/" 2>/dev/null
  done
  echo "e2e: the suite's report$([ "$own_node" = 1 ] && echo " and the node's logs") are kept in $logs"
fi

# 6. teardown (the EXIT trap), then the summary counts a teardown that left state as a failure.
trap - EXIT
teardown
[ "$cleanup_failed" = 0 ] || failed=$((failed + 1))
[ "$failed" != 0 ] || rm -rf "$logs"
summary "$passed" "$failed"
[ "$failed" = 0 ]
