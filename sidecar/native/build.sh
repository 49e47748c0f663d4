#!/usr/bin/env bash
# Builds sidecar/native/build/memory.node, the sidecar's one native addon (memory.c, Node-API),
# against the headers of the Node that runs it. `make install` runs it with the pinned Node's
# headers; the Containerfile runs it in its build stage. Without a C compiler it says so and exits
# 0: the sidecar then runs without giving memory back when quiet, and the addon's test fails
# naming gcc.
#
#   sidecar/native/build.sh [DIR]   (DIR holds node_modules/node, the pinned node package; default:
#                                    this repository)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
arch=$(uname -m | sed 's/x86_64/x64/;s/aarch64/arm64/')
include=${1:-$here/../..}/node_modules/node/node_modules/node-linux-$arch/include/node
out=$here/build/memory.node
cc=${CC:-gcc}
# What it calls is Linux's (/proc/self/pagemap, madvise) and glibc's (malloc_trim).
if [ "$(uname -s)" != Linux ]; then
  echo "native: not Linux: the sidecar will not give memory back when quiet (it runs as before)" >&2
  exit 0
fi
if ! command -v "$cc" >/dev/null; then
  echo "native: $cc not found: the sidecar will not give memory back when quiet (apt-get install gcc, then make install)" >&2
  exit 0
fi
[ -f "$include/node_api.h" ] || { echo "native: no node_api.h in $include (run npm ci first)" >&2; exit 1; }
mkdir -p "$here/build"
"$cc" -shared -fPIC -O2 -std=c11 -Wall -Wextra -Werror -isystem "$include" \
  "$here/memory.c" -o "$out.tmp"
mv "$out.tmp" "$out"
