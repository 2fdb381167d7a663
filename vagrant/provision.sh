#!/usr/bin/env bash
# Provision a minidock lab box (Debian 12), or a plain Debian 12 machine:
#   1. the Debian packages minidock and the labs use (ip, iptables, tcpdump, dig, graphviz, …)
#   2. minidock from this repository into a venv (default /opt/minidock), `minidock` on PATH
#   3. the daemon as a systemd service (minidock.service), started and enabled
#
# Usage: provision.sh [--repo DIR] [--prefix DIR] [--deps-only] [--no-service]
#   --deps-only   step 1 only (the Makefile's `deps` runs this, so CI runs it on every test run)
#   --no-service  steps 1 and 2: nothing is started, nothing is written under /etc
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX=/opt/minidock
DEPS_ONLY=0
SERVICE=1
while [ $# -gt 0 ]; do
  case "$1" in
    --repo) REPO="$2"; shift 2 ;;
    --prefix) PREFIX="$2"; shift 2 ;;
    --deps-only) DEPS_ONLY=1; shift ;;
    --no-service) SERVICE=0; shift ;;
    *) echo "provision.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

PACKAGES=(
  iproute2 iptables kmod procps util-linux   # the kernel objects minidock makes, and their tools
  nftables                                   # --port-maps: libnftables, and nft to look at the maps
  busybox-static                             # the built-in busybox image
  netcat-openbsd iputils-ping dnsutils       # the seeds' nc, ping, dig/nslookup
  bridge-utils tcpdump conntrack             # what students look with: brctl, tcpdump, conntrack -L
  graphviz                                   # minidock topology --format png
  etcd-server etcd-client                    # overlay networks' cluster store, and etcdctl to look in it
  python3 python3-venv python3-pip
)

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
cat > /etc/systemd/system/minidock.service <<UNIT
[Unit]
Description=minidock daemon: Docker's container networking on real kernel objects
After=network-online.target
Wants=network-online.target

[Service]
ExecStart=$PREFIX/bin/minidock daemon --root /var/lib/minidock --socket /run/minidock/minidock.sock
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
