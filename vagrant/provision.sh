#!/usr/bin/env bash
# Provision a minidock lab box (Debian 12), or a plain Debian 12 machine:
#   1. the Debian packages minidock and the labs use (ip, iptables, tcpdump, dig, graphviz, …)
#   2. minidock from this repository into a venv (default /opt/minidock), `minidock` on PATH
#   3. the daemon as a systemd service (minidock.service), started and enabled
#
# Usage: provision.sh [--repo DIR] [--prefix DIR] [--deps-only] [--no-service]
#                     [--cluster-node N --cluster-nodes COUNT [--ssh-key FILE]]
#   --deps-only   step 1 only (the Makefile's `deps` runs this, so CI runs it on every test run)
#   --no-service  steps 1 and 2: nothing is started, nothing is written under /etc
#   --cluster-node N --cluster-nodes COUNT
#                 machine nodeN (192.168.56.1N) of a lab cluster of COUNT (NODES=3 vagrant up):
#                 /etc/hosts names node1..nodeCOUNT, this machine runs an etcd member of the
#                 static cluster of all of them (/etc/default/etcd), and the daemon joins it
#                 (--cluster-store etcd://192.168.56.11:2379,… --cluster-advertise 192.168.56.1N)
#   --ssh-key FILE  with --cluster-node: a private key root gets on every lab machine, to ssh
#                 to the others (the labs' `on node2 …`); the Vagrantfile makes it and uploads it
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX=/opt/minidock
DEPS_ONLY=0
SERVICE=1
NODE=0         # this machine's number in the lab cluster; 0: a single box, no cluster
NODES=0
SSH_KEY=""
CLUSTER_NET=192.168.56  # nodeN is $CLUSTER_NET.(10+N), as in the Vagrantfile
while [ $# -gt 0 ]; do
  case "$1" in
    --repo) REPO="$2"; shift 2 ;;
    --prefix) PREFIX="$2"; shift 2 ;;
    --deps-only) DEPS_ONLY=1; shift ;;
    --no-service) SERVICE=0; shift ;;
    --cluster-node) NODE="$2"; shift 2 ;;
    --cluster-nodes) NODES="$2"; shift 2 ;;
    --ssh-key) SSH_KEY="$2"; shift 2 ;;
    *) echo "provision.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

PACKAGES=(
  iproute2 iptables kmod procps util-linux   # the kernel objects minidock makes, and their tools
  nftables                                   # --port-maps: libnftables, and nft to look at the maps
  busybox-static                             # the built-in busybox image
  netcat-openbsd iputils-ping dnsutils       # the seeds' nc, ping, dig/nslookup
  bridge-utils tcpdump conntrack             # what students look with: brctl, tcpdump, conntrack -L
  graphviz                                   # minidock topology --format png, minidock ui's picture
  chromium chromium-driver                   # the ui's tests: a real browser, headless, driven by selenium
  etcd-server etcd-client                    # overlay networks' cluster store, and etcdctl to look in it
  python3 python3-venv python3-pip
)

if [ "$NODE" != 0 ]; then
  [[ "$NODE" =~ ^[0-9]+$ && "$NODES" =~ ^[0-9]+$ && "$NODE" -ge 1 && "$NODE" -le "$NODES" ]] ||
    { echo "provision.sh: --cluster-node N needs --cluster-nodes COUNT, 1 <= N <= COUNT" >&2; exit 2; }
fi

[ "$(id -u)" = 0 ] || { echo "provision.sh: run as root" >&2; exit 1; }

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "provision: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
[ "$DEPS_ONLY" = 1 ] && exit 0

echo "provision: minidock from $REPO into $PREFIX"
python3 -m venv "$PREFIX"
"$PREFIX/bin/pip" install -q --upgrade pip >/dev/null
"$PREFIX/bin/pip" install -q "$REPO"
"$PREFIX/bin/minidock" --help >/dev/null
[ "$SERVICE" = 1 ] || { echo "provision: installed (no service): $PREFIX/bin/minidock"; exit 0; }

ln -sf "$PREFIX/bin/minidock" /usr/local/bin/minidock

CLUSTER_FLAGS=""
if [ "$NODE" != 0 ]; then
  ME="$CLUSTER_NET.$((10 + NODE))"
  peers=() stores=()
  for i in $(seq "$NODES"); do
    peers+=("node$i=http://$CLUSTER_NET.$((10 + i)):2380")
    stores+=("$CLUSTER_NET.$((10 + i)):2379")
  done
  echo "provision: node$NODE ($ME) of a lab cluster of $NODES"
  # the lab machines by name, for ssh and for reading
  sed -i '/# minidock lab cluster$/d' /etc/hosts
  for i in $(seq "$NODES"); do
    echo "$CLUSTER_NET.$((10 + i)) node$i  # minidock lab cluster" >> /etc/hosts
  done
  # root on every machine may ssh to every other with the shared key (lib.sh's `on`)
  if [ -n "$SSH_KEY" ]; then
    install -d -m 700 /root/.ssh
    install -m 600 "$SSH_KEY" /root/.ssh/minidock-lab
    pub=$(ssh-keygen -y -f /root/.ssh/minidock-lab)
    touch /root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys
    grep -qxF "$pub" /root/.ssh/authorized_keys || echo "$pub" >> /root/.ssh/authorized_keys
    cat > /root/.ssh/config <<SSH
# the minidock lab cluster (provision.sh): ssh node2 CMD
Host node*
  User root
  IdentityFile /root/.ssh/minidock-lab
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  LogLevel ERROR
SSH
  fi
  # an etcd member of the static cluster of every node. The package's own etcd (one member on
  # localhost, data in /var/lib/etcd/default) is replaced: a new data directory, so that the
  # --initial-cluster applies; etcdctl on any node talks to its own member on 127.0.0.1.
  # The watch progress notifications every second are what the daemon's watch expects.
  cat > /etc/default/etcd <<ETCD
# written by minidock's provision.sh: member node$NODE of the lab cluster
ETCD_NAME=node$NODE
ETCD_DATA_DIR=/var/lib/etcd/minidock
ETCD_LISTEN_PEER_URLS=http://$ME:2380
ETCD_INITIAL_ADVERTISE_PEER_URLS=http://$ME:2380
ETCD_LISTEN_CLIENT_URLS=http://$ME:2379,http://127.0.0.1:2379
ETCD_ADVERTISE_CLIENT_URLS=http://$ME:2379
ETCD_INITIAL_CLUSTER=$(IFS=,; echo "${peers[*]}")
ETCD_INITIAL_CLUSTER_STATE=new
ETCD_INITIAL_CLUSTER_TOKEN=minidock-lab
ETCD_EXPERIMENTAL_WATCH_PROGRESS_NOTIFY_INTERVAL=1s
ETCD
  # the private address must be up before etcd binds it; a member waiting for its peers
  # (the first machine, until the others boot) times out and tries again
  install -d /etc/systemd/system/etcd.service.d
  cat > /etc/systemd/system/etcd.service.d/minidock.conf <<DROPIN
[Unit]
After=network-online.target
Wants=network-online.target

[Service]
Restart=on-failure
RestartSec=2
DROPIN
  systemctl daemon-reload
  systemctl enable etcd.service
  # not waiting: a member is ready only once a majority is up, i.e. after the next machine
  systemctl restart --no-block etcd.service
  CLUSTER_FLAGS=" --cluster-store etcd://$(IFS=,; echo "${stores[*]}") --cluster-advertise $ME --node-name node$NODE"
fi

cat > /etc/systemd/system/minidock.service <<UNIT
[Unit]
Description=minidock daemon: Docker's container networking on real kernel objects
After=network-online.target
Wants=network-online.target

[Service]
ExecStart=$PREFIX/bin/minidock daemon --root /var/lib/minidock --socket /run/minidock/minidock.sock$CLUSTER_FLAGS
Restart=on-failure
# containers outlive a daemon restart, as with Docker's live-restore
KillMode=process

[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable --now minidock.service
for _ in $(seq 50); do [ -S /run/minidock/minidock.sock ] && break; sleep 0.2; done
minidock version >/dev/null && echo "provision: minidock daemon running; try: sudo minidock network ls"
if [ "$NODE" != 0 ]; then
  echo "provision: node$NODE joins the cluster once a majority of etcd members is up; try: sudo minidock node ls"
fi
