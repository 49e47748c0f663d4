#!/usr/bin/env bash
# Builds the two images `make e2e` runs and saves them as docker-archives for containerd:
#   localhost/airlock:VERSION       `make image` (image/build.sh): operator, sidecar and init
#   localhost/airlock-e2e-agent:VERSION   test/e2e/agent.Containerfile: the agent's clients, the
#                                   test upstream and the bystander
# Progress goes to stderr; stdout gets AIRLOCK_IMAGE, AIRLOCK_TAR, AGENT_IMAGE and AGENT_TAR lines.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
cache=${AIRLOCK_IMAGE_CACHE:-$HOME/.cache/airlock/image}
version=$(sed -n 's/^  "version": "\([^"]*\)",$/\1/p' package.json | head -n 1)
airlock=localhost/airlock:$version
agent=localhost/airlock-e2e-agent:$version
agent_tar=$cache/airlock-e2e-agent-$version.tar

image/build.sh >&2
export CONTAINERS_CONF=$cache/containers.conf
# shellcheck source=../../image/base.env
source image/base.env
base=$BASE_REF
podman image exists "$base" || { echo "e2e images: base $base missing after make image" >&2; exit 1; }
start=$SECONDS
podman build --network host --layers --pull=never --build-arg "BASE=$base" --build-arg "AIRLOCK_IMAGE=$airlock" \
  -f test/e2e/agent.Containerfile -t "$agent" test/e2e >"$cache/agent-build.log" 2>&1 || {
  tail -n 30 "$cache/agent-build.log" >&2
  echo "e2e images: podman build of $agent failed (log: $cache/agent-build.log)" >&2
  exit 1
}
id=$(podman image inspect --format '{{.Id}}' "$agent")
if [ ! -s "$agent_tar" ] || [ "$(cat "$agent_tar.id" 2>/dev/null)" != "$id" ]; then
  podman save --quiet --format docker-archive -o "$agent_tar.tmp" "$agent"
  mv "$agent_tar.tmp" "$agent_tar"
  echo "$id" >"$agent_tar.id"
fi
echo "e2e images: $agent ready ($((SECONDS - start)) s)" >&2
echo "AIRLOCK_IMAGE=$airlock"
echo "AIRLOCK_TAR=$cache/airlock-$version.tar"
echo "AGENT_IMAGE=$agent"
echo "AGENT_TAR=$agent_tar"
