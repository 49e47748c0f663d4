#!/usr/bin/env bash
# A real single-node Kubernetes on this machine for `make e2e`: etcd, kube-apiserver (RBAC and
# ServiceAccount admission on), kube-controller-manager, kube-scheduler, containerd + runc, the CNI
# bridge and kubelet. Everything it creates is recorded and removed by `down`, which `up` also runs
# first when a previous run left state behind.
#
#   test/e2e/node.sh up              start it; prints KUBECONFIG=PATH last
#   test/e2e/node.sh import TAR...   import docker-archive images into the node's containerd
#   test/e2e/node.sh down            stop everything by recorded PID and remove what it added
#   test/e2e/node.sh check-clean     exit 1 naming anything of the node still present
#
# The rules that keep the node's traffic on this machine (docs/testing.md):
#   - the Service range 10.0.0.0/24 is a blackhole route (there is no kube-proxy), except the
#     `kubernetes` Service, translated for pods to the API server on the node address;
#   - pods may reach the node and other pods only: FORWARD drops anything else from the pod range,
#     and the bridge has no masquerade;
#   - the node address 10.99.0.1 lives on lo; the API server, kubelet and etcd listen only there
#     or on 127.0.0.1; pods' resolv.conf names it, and nothing answers DNS there.
# Environment: AIRLOCK_E2E_NODE_DIR (state, default /var/tmp/airlock-e2e-node).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
dir=${AIRLOCK_E2E_NODE_DIR:-/var/tmp/airlock-e2e-node}
node_name=airlock-e2e
node_ip=10.99.0.1
pod_cidr=10.244.0.0/24
service_cidr=10.0.0.0/24
kubernetes_service=10.0.0.1
bridge=airlock-e2e0
api_port=6443
fwd_chain=AIRLOCK-E2E-FWD
nat_chain=AIRLOCK-E2E-SVC
containerd_sock=/run/containerd/containerd.sock
started=$SECONDS

say() { printf '[node %3ds] %s\n' "$((SECONDS - started))" "$*" >&2; }
fail() {
  printf 'e2e node: %s\n' "$*" >&2
  exit 1
}

# ---- down: idempotent; safe when nothing, or half of it, is there --------------------------------
stop_pid() { # stop_pid NAME: SIGTERM by recorded PID, SIGKILL after 10 s
  local f=$dir/run/$1.pid pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
    say "stopped $1 (pid $pid)"
  fi
  rm -f "$f"
}

down() {
  local ctr=(ctr --address "$containerd_sock" -n k8s.io)
  # /run/containerd is touched only when this script's containerd is (or was) the one there:
  # preflight refuses to start next to another containerd, and this never removes one's state.
  local ours=0
  [ -f "$dir/run/containerd.pid" ] && ours=1
  stop_pid kubelet
  stop_pid kube-scheduler
  stop_pid kube-controller-manager
  # The pods' containers, then containerd: tasks first (a running task keeps its mounts).
  if [ -f "$dir/run/containerd.pid" ] && kill -0 "$(cat "$dir/run/containerd.pid")" 2>/dev/null; then
    local t c
    for t in $("${ctr[@]}" tasks ls -q 2>/dev/null); do "${ctr[@]}" tasks kill -s KILL "$t" >/dev/null 2>&1 || true; done
    sleep 1
    for c in $("${ctr[@]}" containers ls -q 2>/dev/null); do
      "${ctr[@]}" tasks delete -f "$c" >/dev/null 2>&1 || true
      "${ctr[@]}" containers rm "$c" >/dev/null 2>&1 || true
    done
  fi
  stop_pid containerd
  # Shims outlive containerd: they are children of init with our state folder on their command line.
  [ "$ours" = 0 ] || pkill -9 -f "containerd-shim-runc-v2 .*-address $containerd_sock" 2>/dev/null || true
  stop_pid kube-apiserver
  stop_pid etcd
  # Mounts: the kubelet's volumes, containerd's rootfs and shm, the CNI network namespaces.
  local m
  for _ in 1 2 3; do
    awk -v d="$dir" -v ours="$ours" '$2 ~ "^" d "/" || (ours && ($2 ~ "^/run/containerd/" || $2 ~ "^/run/netns/cni-")) { print $2 }' /proc/mounts |
      sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  done
  if [ "$ours" = 1 ]; then
    for m in /run/netns/cni-*; do [ -e "$m" ] && rm -f "$m"; done
    rm -rf /run/containerd
  fi
  # Network: the bridge, the node address, the blackhole route, our iptables chains.
  ip link del "$bridge" 2>/dev/null || true
  ip addr del "$node_ip/32" dev lo 2>/dev/null || true
  ip route del blackhole "$service_cidr" 2>/dev/null || true
  while iptables -w -D FORWARD -j "$fwd_chain" 2>/dev/null; do :; done
  iptables -w -F "$fwd_chain" 2>/dev/null && iptables -w -X "$fwd_chain" 2>/dev/null || true
  while iptables -w -t nat -D PREROUTING -j "$nat_chain" 2>/dev/null; do :; done
  iptables -w -t nat -F "$nat_chain" 2>/dev/null && iptables -w -t nat -X "$nat_chain" 2>/dev/null || true
  # The bridge plugin's own rules (it adds none without ipMasq; portmap's chains if it made any).
  local chain
  for chain in $(iptables -w -t nat -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^CNI-/ { print $2 }'); do
    iptables -w -t nat -S | awk -v c="$chain" '$1 == "-A" && $0 ~ "-j " c "( |$)" { $1 = "-D"; print }' |
      while read -r rule; do eval "iptables -w -t nat $rule" 2>/dev/null || true; done
    iptables -w -t nat -F "$chain" 2>/dev/null || true
    iptables -w -t nat -X "$chain" 2>/dev/null || true
  done
  rm -rf "$dir/kubelet" "$dir/cni/ipam" "$dir/containerd/state"
}

# Exit 1 naming whatever of the node is still on the machine.
check_clean() {
  local left=()
  local n
  for n in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet containerd; do
    [ -f "$dir/run/$n.pid" ] && kill -0 "$(cat "$dir/run/$n.pid")" 2>/dev/null && left+=("process $n")
  done
  pgrep -f "containerd-shim-runc-v2 .*-address $containerd_sock" >/dev/null && left+=("containerd shims")
  grep -qE " ($dir/|/run/containerd/|/run/netns/cni-)" /proc/mounts && left+=("mounts under $dir, /run/containerd or /run/netns")
  ip link show "$bridge" >/dev/null 2>&1 && left+=("bridge $bridge")
  ip addr show dev lo | grep -q " $node_ip/32 " && left+=("address $node_ip on lo")
  ip route show type blackhole | grep -q "^blackhole $service_cidr" && left+=("blackhole route $service_cidr")
  iptables -w -S "$fwd_chain" >/dev/null 2>&1 && left+=("iptables chain $fwd_chain")
  iptables -w -t nat -S "$nat_chain" >/dev/null 2>&1 && left+=("iptables nat chain $nat_chain")
  if [ ${#left[@]} -gt 0 ]; then
    printf 'e2e node: left behind: %s\n' "${left[@]}" >&2
    return 1
  fi
  echo "e2e node: nothing left behind (processes, mounts, bridge, address, route, iptables chains)"
}

# ---- up ---------------------------------------------------------------------------------------------
need() { command -v "$1" >/dev/null || fail "'$1' is not installed; $2"; }

preflight() {
  [ "$(id -u)" = 0 ] || fail "must run as root (network, mounts, containerd and kubelet)"
  need containerd "apt-get install containerd"
  need ctr "apt-get install containerd"
  need runc "apt-get install runc (crun does not work on this machine's hybrid cgroups)"
  need iptables "apt-get install iptables"
  need ip "apt-get install iproute2"
  need openssl "apt-get install openssl"
  [ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] && [ -x /usr/lib/cni/loopback ] ||
    fail "the CNI plugins are not installed; apt-get install containernetworking-plugins"
  if [ -S "$containerd_sock" ] && [ ! -f "$dir/run/containerd.pid" ]; then
    fail "another containerd serves $containerd_sock; the e2e node needs that socket to itself (stop it, or use AIRLOCK_E2E_KUBECONFIG with a cluster of your own)"
  fi
}

pki() {
  local p=$dir/pki
  mkdir -p "$p"
  printf '[req]\ndistinguished_name = dn\n[dn]\n' >"$p/openssl.cnf"
  local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7)
  local req=(openssl req -config "$p/openssl.cnf" -x509 "${ec[@]}")
  (
    cd "$p"
    "${req[@]}" -keyout ca.key -out ca.crt -subj /CN=airlock-e2e-ca \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
    leaf() { # leaf NAME SUBJECT USAGE [SAN]
      "${req[@]}" -CA ca.crt -CAkey ca.key -keyout "$1.key" -out "$1.crt" -subj "$2" \
        -addext basicConstraints=critical,CA:FALSE -addext keyUsage=critical,digitalSignature \
        -addext "extendedKeyUsage=$3" ${4:+-addext "subjectAltName=$4"} 2>/dev/null
    }
    leaf apiserver /CN=kube-apiserver serverAuth \
      "IP:$node_ip,IP:$kubernetes_service,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost"
    leaf admin /O=system:masters/CN=airlock-e2e-admin clientAuth
    leaf kubelet "/O=system:nodes/CN=system:node:$node_name" clientAuth
    leaf kubelet-serving "/CN=$node_name" serverAuth "IP:$node_ip"
    leaf apiserver-kubelet-client /O=system:masters/CN=kube-apiserver-kubelet-client clientAuth
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
    openssl pkey -in sa.key -pubout -out sa.pub
    chmod 600 ./*.key
  )
}

kubeconfig() { # kubeconfig FILE USER SERVER
  b64() { base64 -w0 <"$1"; }
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: $node_name
    cluster: {server: "$3", certificate-authority-data: "$(b64 "$dir/pki/ca.crt")"}
users:
  - name: $2
    user: {client-certificate-data: "$(b64 "$dir/pki/$2.crt")", client-key-data: "$(b64 "$dir/pki/$2.key")"}
contexts:
  - name: $node_name
    context: {cluster: $node_name, user: $2}
current-context: $node_name
EOF
  chmod 600 "$1"
}

start() { # start NAME COMMAND...: in its own session, output to logs/NAME.log, PID recorded
  local name=$1
  shift
  setsid "$@" >"$dir/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$dir/run/$name.pid"
}

wait_for() { # wait_for SECONDS WHAT COMMAND...
  local limit=$1 what=$2 i
  shift 2
  for ((i = 0; i < limit * 2; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  fail "$what not ready after ${limit}s (logs: $dir/logs/)"
}

network() {
  ip addr show dev lo | grep -q " $node_ip/32 " || ip addr add "$node_ip/32" dev lo
  ip route show type blackhole | grep -q "^blackhole $service_cidr" || ip route add blackhole "$service_cidr"
  iptables -w -N "$fwd_chain"
  iptables -w -A "$fwd_chain" -s "$pod_cidr" -d "$pod_cidr" -j RETURN
  iptables -w -A "$fwd_chain" -s "$pod_cidr" -j DROP
  iptables -w -A "$fwd_chain" -d "$pod_cidr" ! -s "$pod_cidr" -j DROP
  iptables -w -I FORWARD 1 -j "$fwd_chain"
  # The one Service pods need without kube-proxy: `kubernetes`, to the API server on the node.
  iptables -w -t nat -N "$nat_chain"
  iptables -w -t nat -A "$nat_chain" -s "$pod_cidr" -d "$kubernetes_service/32" -p tcp --dport 443 \
    -j DNAT --to-destination "$node_ip:$api_port"
  iptables -w -t nat -I PREROUTING 1 -j "$nat_chain"
}

configs() {
  mkdir -p "$dir/cni/net.d" "$dir/containerd" "$dir/kubelet/root" "$dir/kubelet/manifests"
  cat >"$dir/cni/net.d/10-airlock-e2e.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "airlock-e2e",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$bridge",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "$pod_cidr" }]],
        "routes": [{ "dst": "0.0.0.0/0" }],
        "dataDir": "$dir/cni/ipam"
      }
    }
  ]
}
EOF
  cat >"$dir/containerd/config.toml" <<EOF
version = 2
root = "$dir/containerd/root"
state = "/run/containerd"
[grpc]
  address = "$containerd_sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10.1"
  disable_apparmor = true
  disable_tcp_service = true
  restrict_oom_score_adj = true
  enable_unprivileged_ports = false
  enable_unprivileged_icmp = false
  tolerate_missing_hugetlb_controller = true
  disable_hugetlb_controller = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$dir/cni/net.d"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    snapshotter = "overlayfs"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = ""
EOF
  # Pods' DNS goes to the node address, where nothing answers: no query heads for this machine's
  # own resolver, and an agent's NXDOMAIN can only come from its sidecar.
  printf 'nameserver %s\n' "$node_ip" >"$dir/kubelet/resolv.conf"
  cat >"$dir/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
protectKernelDefaults: false
oomScoreAdj: 0
containerRuntimeEndpoint: unix://$containerd_sock
address: $node_ip
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: $dir/pki/kubelet-serving.crt
tlsPrivateKeyFile: $dir/pki/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $dir/pki/ca.crt}
authorization: {mode: AlwaysAllow}
staticPodPath: $dir/kubelet/manifests
clusterDNS: []
resolvConf: $dir/kubelet/resolv.conf
evictionHard: {}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
localStorageCapacityIsolation: false
makeIPTablesUtilChains: false
serializeImagePulls: false
registerNode: true
EOF
}

pause_image() { # the sandbox image: a static Go binary that sleeps until signalled, FROM scratch
  local cache=${XDG_CACHE_HOME:-$HOME/.cache}/airlock/e2e tar
  tar=$cache/pause.tar
  mkdir -p "$cache"
  if [ ! -s "$tar" ]; then
    need go "Go builds the node's pause image"
    need podman "apt-get install podman runc"
    local work
    work=$(mktemp -d)
    cp "$here/pause/main.go" "$here/pause/Containerfile" "$work/"
    (cd "$work" && printf 'module airlock.test/pause\n\ngo 1.22\n' >go.mod &&
      CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o pause .)
    CONTAINERS_CONF=${AIRLOCK_CONTAINERS_CONF:-$HOME/.cache/airlock/image/containers.conf} \
      podman build --quiet --network none --pull=never -t registry.k8s.io/pause:3.10.1 "$work" >/dev/null
    podman save --quiet --format docker-archive -o "$tar.tmp" registry.k8s.io/pause:3.10.1
    mv "$tar.tmp" "$tar"
    rm -rf "$work"
    say "built the pause image: $tar"
  fi
  echo "$tar"
}

import() {
  local tar
  for tar in "$@"; do
    ctr --address "$containerd_sock" -n k8s.io images import --no-unpack "$tar" >/dev/null ||
      fail "could not import $tar into containerd"
    say "imported $(basename "$tar")"
  done
}

up() {
  preflight
  local bins
  bins=$("$root/test/k8s/build.sh" --node) || fail "could not build the node's binaries (above)"
  local ETCD KUBE_APISERVER KUBECTL KUBELET KUBE_CONTROLLER_MANAGER KUBE_SCHEDULER
  eval "$(grep -E '^(ETCD|KUBE_APISERVER|KUBECTL|KUBELET|KUBE_CONTROLLER_MANAGER|KUBE_SCHEDULER)=' <<<"$bins")"
  local pause
  pause=$(pause_image)
  say "binaries and pause image ready"

  down 2>/dev/null
  rm -rf "$dir"
  mkdir -p "$dir/run" "$dir/logs"
  pki
  kubeconfig "$dir/admin.kubeconfig" admin "https://$node_ip:$api_port"
  kubeconfig "$dir/kubelet.kubeconfig" kubelet "https://$node_ip:$api_port"
  configs
  network
  say "network: $node_ip on lo, blackhole $service_cidr, FORWARD confined to $pod_cidr"

  start containerd containerd --config "$dir/containerd/config.toml"
  wait_for 30 containerd ctr --address "$containerd_sock" version
  import "$pause"

  local p=$dir/pki
  start etcd "$ETCD" --name default --data-dir="$dir/etcd" --unsafe-no-fsync \
    --listen-client-urls=http://127.0.0.1:23790 --advertise-client-urls=http://127.0.0.1:23790 \
    --listen-peer-urls=http://127.0.0.1:23800 --initial-advertise-peer-urls=http://127.0.0.1:23800 \
    --initial-cluster=default=http://127.0.0.1:23800
  start kube-apiserver "$KUBE_APISERVER" --etcd-servers=http://127.0.0.1:23790 \
    --bind-address="$node_ip" --secure-port="$api_port" --advertise-address="$node_ip" \
    --cert-dir="$dir/run/apiserver-certs" --tls-cert-file="$p/apiserver.crt" --tls-private-key-file="$p/apiserver.key" \
    --client-ca-file="$p/ca.crt" --authorization-mode=Node,RBAC --service-cluster-ip-range="$service_cidr" \
    --service-account-issuer=https://kubernetes.default.svc --service-account-key-file="$p/sa.pub" \
    --service-account-signing-key-file="$p/sa.key" --api-audiences=https://kubernetes.default.svc \
    --kubelet-preferred-address-types=InternalIP --enable-aggregator-routing=true \
    --kubelet-client-certificate="$p/apiserver-kubelet-client.crt" --kubelet-client-key="$p/apiserver-kubelet-client.key" \
    --allow-privileged=true --profiling=false
  wait_for 90 kube-apiserver "$KUBECTL" --kubeconfig "$dir/admin.kubeconfig" get --raw /readyz
  say "kube-apiserver ready on https://$node_ip:$api_port"

  local kc=$dir/admin.kubeconfig
  start kube-controller-manager "$KUBE_CONTROLLER_MANAGER" --kubeconfig="$kc" \
    --authentication-kubeconfig="$kc" --authorization-kubeconfig="$kc" --bind-address=127.0.0.1 \
    --secure-port=20257 --leader-elect=false --controllers='*' --use-service-account-credentials=false \
    --service-account-private-key-file="$p/sa.key" --root-ca-file="$p/ca.crt" --profiling=false
  start kube-scheduler "$KUBE_SCHEDULER" --kubeconfig="$kc" --authentication-kubeconfig="$kc" \
    --authorization-kubeconfig="$kc" --bind-address=127.0.0.1 --secure-port=20259 --leader-elect=false \
    --profiling=false
  start kubelet "$KUBELET" --config="$dir/kubelet/config.yaml" --kubeconfig="$dir/kubelet.kubeconfig" \
    --root-dir="$dir/kubelet/root" --hostname-override="$node_name" --node-ip="$node_ip" --v=1
  ready() {
    [ "$("$KUBECTL" --kubeconfig "$kc" get node "$node_name" \
      -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
  }
  wait_for 120 "node $node_name" ready
  # The default ServiceAccount (and kube-root-ca.crt) exist once the controller manager runs.
  wait_for 60 "the default ServiceAccount" "$KUBECTL" --kubeconfig "$kc" get serviceaccount default -n default
  say "node $node_name Ready"
  echo "KUBECONFIG=$kc"
  echo "KUBECTL=$KUBECTL"
}

case "${1:-}" in
  up) up ;;
  down)
    down
    check_clean
    ;;
  import)
    shift
    import "$@"
    ;;
  check-clean) check_clean ;;
  *) fail "usage: test/e2e/node.sh up|down|import TAR...|check-clean" ;;
esac
