#!/bin/bash
# `make image`: builds the one Airlock image (operator, sidecar, init) with podman + runc, with no
# registry: the base is a Debian bookworm minbase rootfs from debootstrap, imported with `podman
# import` and passed to the Containerfile as BASE. Then it checks the image really runs, saves it
# as a docker-archive for the e2e to import, and prints the image ID, its size and the seconds each
# phase took. docs/image.md describes all of it.
#
# Environment (all optional):
#   AIRLOCK_IMAGE_CACHE   cache directory (default ~/.cache/airlock/image): base rootfs tarball,
#                         the probed containers.conf, the saved archive
#   AIRLOCK_DEBIAN_MIRROR Debian mirror for debootstrap (default: the one apt on this machine uses)
#   AIRLOCK_IMAGE_SMOKE=0 skip the smoke checks (not recommended)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cache=${AIRLOCK_IMAGE_CACHE:-$HOME/.cache/airlock/image}
mkdir -p "$cache"

# The base's name and recipe version (shared with test/e2e/images.sh).
# shellcheck source=base.env
source "$root/image/base.env"
suite=$BASE_SUITE
base_ref=$BASE_REF
base_tar="$cache/airlock-base-${suite}-minbase-r${BASE_RECIPE}.tar"

version=$(sed -n 's/^  "version": "\([^"]*\)",$/\1/p' package.json | head -n 1)
[ -n "$version" ] || { echo "image: no version in package.json" >&2; exit 1; }
image="localhost/airlock:${version}"
archive="$cache/airlock-${version}.tar"

t_all=$SECONDS
phase_start=$SECONDS
phase() { # phase NAME: prints how long the previous phase took
  echo "image: $1 ($((SECONDS - phase_start)) s)"
  phase_start=$SECONDS
}

need() { command -v "$1" >/dev/null || { echo "image: '$1' not found; $2" >&2; exit 1; }; }
need podman "apt-get install podman runc (docs/image.md)"
need runc "apt-get install runc"

# --- The Debian mirror apt on this machine uses (first URI serving the suite) ------------------
debian_uri() { # debian_uri SUITE: prints the first URI of /etc/apt/sources.list* serving SUITE
  local want=$1 f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    case $f in
      *.sources) # deb822: stanzas separated by blank lines
        awk -v want="$want" '
          function flush() { if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " want " ") && uris != "") { split(uris, u, " "); print u[1]; found = 1; exit } types = suites = uris = "" }
          /^[ \t]*$/ { flush(); next }
          /^Types:/ { sub(/^Types:[ \t]*/, ""); types = $0 }
          /^Suites:/ { sub(/^Suites:[ \t]*/, ""); suites = $0 }
          /^URIs:/ { sub(/^URIs:[ \t]*/, ""); uris = $0 }
          END { if (!found) flush() }' "$f" ;;
      *) # one-line: deb [options] URI SUITE COMPONENT...
        awk -v want="$want" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } if ($(i + 1) == want) { print $i; exit } }' "$f" ;;
    esac
  done | head -n 1
}

# --- containers.conf: rlimits under this machine's hard limits, runtime runc ------------------
# Podman's default container rlimits are above this sandbox's hard limits, and a container whose
# rlimit cannot be set does not start. The hard limits podman's processes may set are probed once
# (a start that fails names the rlimit) and kept in the cache.
conf="$cache/containers.conf"
write_conf() { # write_conf NOFILE NPROC
  printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]\n[engine]\nruntime = "runc"\n' \
    "$1" "$1" "$2" "$2" >"$conf.tmp"
  mv "$conf.tmp" "$conf"
}
probe_conf() {
  local nofile nproc candidate
  nofile=$(ulimit -Hn)
  [ "$nofile" = unlimited ] && nofile=1048576
  for candidate in "$(ulimit -Hu)" 65536 32768 16384 8192 4096; do
    [ "$candidate" = unlimited ] && candidate=4194304
    nproc=$candidate
    write_conf "$nofile" "$nproc"
    if CONTAINERS_CONF=$conf podman run --rm --network none --entrypoint /bin/true "$base_ref" 2>"$cache/probe.err"; then
      echo "image: containers.conf rlimits nofile=$nofile nproc=$nproc"
      return 0
    fi
  done
  echo "image: no rlimits under which a container starts; last error:" >&2
  cat "$cache/probe.err" >&2
  rm -f "$conf"
  return 1
}

# --- Base: debootstrap --variant=minbase + podman import, cached by recipe ---------------------
if ! podman image exists "$base_ref"; then
  if [ ! -s "$base_tar" ]; then
    need debootstrap "apt-get install debootstrap"
    mirror=${AIRLOCK_DEBIAN_MIRROR:-$(debian_uri "$suite")}
    [ -n "$mirror" ] || { echo "image: no Debian mirror for $suite in /etc/apt/sources.list*; set AIRLOCK_DEBIAN_MIRROR" >&2; exit 1; }
    security=$(debian_uri "${suite}-security")
    rootfs=$(mktemp -d /var/tmp/airlock-rootfs.XXXXXX)
    trap 'rm -rf "$rootfs"' EXIT
    echo "image: debootstrap --variant=minbase $suite from the mirror apt uses"
    debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1 || {
      tail -n 20 "$cache/debootstrap.log" >&2
      exit 1
    }
    {
      echo "deb $mirror $suite main"
      echo "deb $mirror ${suite}-updates main"
      [ -z "$security" ] || echo "deb $security ${suite}-security main"
    } >"$rootfs/etc/apt/sources.list"
    # Slim it as Debian's -slim images are: no manuals, info pages, translations or documentation
    # but the copyright files, neither now nor for packages installed later; no apt caches.
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/airlock-slim" <<'EOF2'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF2
    find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
    rm -rf "$rootfs"/usr/share/{man,groff,info,lintian,linda,locale}/* \
      "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/lib/apt/lists/* \
      "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/lib/dpkg/*-old "$rootfs"/var/log/* "$rootfs"/tmp/*
    tar --numeric-owner --xattrs -C "$rootfs" -cf "$base_tar.tmp" .
    mv "$base_tar.tmp" "$base_tar"
    rm -rf "$rootfs"
    trap - EXIT
    phase "base rootfs: $base_tar"
  fi
  podman import --quiet \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' "$base_tar" "$base_ref" >/dev/null
  phase "base imported: $base_ref"
fi

[ -s "$conf" ] || probe_conf
export CONTAINERS_CONF=$conf

# --- Build --------------------------------------------------------------------------------------
# The build stage fetches from Debian and npm: it runs in the host's network (no bridge, no NAT
# rules on this machine). The CA bundle npm trusts here is lent to it as a build secret and is
# not part of any layer.
secret=()
ca=$(npm config get cafile 2>/dev/null || true)
[ -n "$ca" ] && [ "$ca" != null ] && [ "$ca" != undefined ] && [ -r "$ca" ] || ca=/etc/ssl/certs/ca-certificates.crt
[ -r "$ca" ] && secret=(--secret "id=build_ca,src=$ca")
podman build --network host --layers --pull=never "${secret[@]}" \
  --build-arg "BASE=$base_ref" -f Containerfile -t "$image" . >"$cache/build.log" 2>&1 || {
  tail -n 40 "$cache/build.log" >&2
  echo "image: podman build failed (log: $cache/build.log)" >&2
  exit 1
}
id=$(podman image inspect --format '{{.Id}}' "$image")
phase "built $image"

# --- Smoke checks: the image runs as each role needs ---------------------------------------------
# Four containers, all with --network none (a fresh network namespace holding only lo): nothing
# they do reaches this machine's network. An image ID that passed once is not checked again.
verified="$cache/airlock-${version}.verified"
if [ "${AIRLOCK_IMAGE_SMOKE:-1}" = 0 ]; then
  echo "image: smoke checks skipped (AIRLOCK_IMAGE_SMOKE=0)"
elif [ "$(cat "$verified" 2>/dev/null)" = "$id" ]; then
  echo "image: smoke checks passed before for this image ID"
else
  rm -f "$verified"
  run() { podman run --rm --network none "$@"; }
  fail() { echo "image: smoke check failed: $*" >&2; exit 1; }
  want_node=$(awk '/"node_modules\/node": \{/ { f = 1 } f && /"version":/ { gsub(/[",]/, "", $2); print $2; exit }' package-lock.json)
  [ -n "$want_node" ] || fail "no node version in package-lock.json"
  want_sum=none
  [ ! -x node_modules/node/bin/node ] || want_sum=$(sha256sum <node_modules/node/bin/node | cut -d' ' -f1)

  # 1. The ENTRYPOINT as the pod runs it, as UID 15000.
  out=$(run "$image" --help 2>&1) || fail "--help: $out"
  grep -q '^  init ' <<<"$out" || fail "--help printed no usage: $out"

  # 2. Unprivileged: the user, the pinned node (the very binary of node_modules/node when the
  #    repository has it), every production dependency loads (nothing needed was pruned or left
  #    out), the samples validate, the operator entry point loads its module graph.
  out=$(run -e WANT_NODE="v$want_node" -e WANT_SUM="$want_sum" --entrypoint /bin/sh "$image" -c '
    set -e
    [ "$(id)" = "uid=15000(airlock) gid=15000(airlock) groups=15000(airlock)" ] || { echo "runs as $(id)"; exit 1; }
    [ "$(/app/node_modules/.bin/node --version)" = "$WANT_NODE" ] || { echo "node $(/app/node_modules/.bin/node --version), pinned $WANT_NODE"; exit 1; }
    sum=$(sha256sum </app/node_modules/node/bin/node | cut -d" " -f1)
    [ "$WANT_SUM" = none ] || [ "$sum" = "$WANT_SUM" ] || { echo "node differs from the pinned binary"; exit 1; }
    /app/node_modules/.bin/node --input-type=module -e "import { readFileSync } from \"node:fs\"; for (const d of Object.keys(JSON.parse(readFileSync(\"/app/package.json\", \"utf8\")).dependencies)) await import(d);"
    /app/bin/airlock validate --policy /app/crds/samples/valid
    /app/bin/airlock operator --help >/dev/null
    # The image runs the JavaScript made at build time: with type stripping off, loading any .ts
    # module would fail.
    [ -f /app/sidecar/cli/main.js ] && [ -f /app/operator/main.js ] || { echo "no .js entry points"; exit 1; }
    [ -f /app/sidecar/cli/bundle.js ] || { echo "no sidecar bundle (image/bundle.ts)"; exit 1; }
    NODE_OPTIONS=--no-experimental-strip-types /app/bin/airlock validate --policy /app/crds/samples/valid >/dev/null
    NODE_OPTIONS=--no-experimental-strip-types /app/bin/airlock operator --help >/dev/null
    NODE_OPTIONS=--no-experimental-strip-types /app/bin/airlock inject --help >/dev/null
    # The native addon of the sidecar, built in the build stage, loads in this Node and runs.
    /app/node_modules/.bin/node -e "const m = require(\"/app/sidecar/native/build/memory.node\"); if (typeof m.trim() !== \"boolean\") process.exit(1);"
    ! touch /app/bin/airlock 2>/dev/null || { echo "UID 15000 can write /app"; exit 1; }' 2>&1) ||
    fail "as UID 15000: $out"

  # 3. The init step as its securityContext runs it (root, NET_ADMIN, NET_RAW): the dry run,
  #    then a real apply in the container's own network namespace, read back from the kernel.
  out=$(run --user 0 --cap-add NET_ADMIN --cap-add NET_RAW --entrypoint /bin/sh "$image" -c '
    set -e
    /app/bin/airlock init --dry-run | grep -q "^\*nat"
    /app/bin/airlock init
    iptables -w -t nat -S | grep -q -- "-N AIRLOCK_"
    ip6tables -w -t nat -S | grep -q -- "-N AIRLOCK_"
    iptables -w -t nat -S OUTPUT | grep -q -- "-j AIRLOCK_"' 2>&1) || fail "init as root with NET_ADMIN: $out"

  # 4. Without root and NET_ADMIN, init fails and says so (exit 1) rather than pretend.
  code=0
  out=$(run "$image" init 2>&1) || code=$?
  [ "$code" = 1 ] || fail "init as UID 15000 without NET_ADMIN exited $code: $out"

  echo "$id" >"$verified"
  phase "smoke checks passed (--help; UID 15000, node v$want_node$([ "$want_sum" = none ] || echo ", same binary as node_modules"), dependencies load, samples validate, operator loads, the .js and the sidecar's bundle run without type stripping, the memory addon loads, /app read-only; init --dry-run and a real apply as root+NET_ADMIN; init refused unprivileged)"
fi

# --- Archive for the e2e (containerd: ctr -n k8s.io images import) -------------------------------
if [ ! -s "$archive" ] || [ "$(cat "$archive.id" 2>/dev/null)" != "$id" ]; then
  rm -f "$archive" "$archive.id"
  podman save --quiet --format docker-archive -o "$archive.tmp" "$image"
  mv "$archive.tmp" "$archive"
  echo "$id" >"$archive.id"
  phase "saved $archive"
fi

size=$(podman image inspect --format '{{.Size}}' "$image")
echo "image: $image"
echo "image: id $id"
echo "image: size $size bytes ($((size / 1024 / 1024)) MiB uncompressed), archive $(du -m "$archive" | cut -f1) MiB: $archive"
echo "image: done in $((SECONDS - t_all)) s"
