# Shared by every lab's `check`: one PASS/FAIL line per expectation, exit 1 if any failed.
# Run a check as root on the lab box after doing the lab's steps: sudo ./check
FAILED=0

# check "what is expected" COMMAND...: passes when COMMAND exits 0
check() {
  local what="$1"; shift
  if "$@" >/dev/null 2>&1; then echo "PASS  $what"; else echo "FAIL  $what"; FAILED=1; fi
}

# refuse "what is expected" COMMAND...: passes when COMMAND fails
refuse() {
  local what="$1"; shift
  if "$@" >/dev/null 2>&1; then echo "FAIL  $what"; FAILED=1; else echo "PASS  $what"; fi
}

# contains "what is expected" NEEDLE COMMAND...: passes when COMMAND's output (stdout+stderr) holds NEEDLE
contains() {
  local what="$1" needle="$2"; shift 2
  if "$@" 2>&1 | grep -qF -- "$needle"; then echo "PASS  $what"; else echo "FAIL  $what"; FAILED=1; fi
}

# the IPv4 address of container $1 on network $2
ip_of() {
  minidock inspect -f "{{(index .NetworkSettings.Networks \"$2\").IPAddress}}" "$1" 2>/dev/null
}

# -- a lab cluster (NODES=3 vagrant up: node1, node2, node3): a lab's steps and check run on node1

# on NODE COMMAND...: run COMMAND as root on lab machine NODE, over ssh with the key provisioning
# shared (root's ~/.ssh/config: Host node*). The test harness sets MINIDOCK_LAB_ON to its own command.
on() {
  local node="$1"; shift
  if [ -n "${MINIDOCK_LAB_ON:-}" ]; then
    $MINIDOCK_LAB_ON "$node" "$@"
  elif [ "$node" = "$(hostname -s)" ]; then
    "$@"
  else
    ssh "root@$node" "$(printf '%q ' "$@")"
  fi
}

# etcd_member stop|start NODE: the etcd member of lab machine NODE (the harness: MINIDOCK_LAB_ETCD)
etcd_member() {
  if [ -n "${MINIDOCK_LAB_ETCD:-}" ]; then $MINIDOCK_LAB_ETCD "$@"; else on "$2" systemctl "$1" etcd; fi
}

# in_netns NAMESPACE COMMAND...: COMMAND in a network namespace minidock registered, as
# `ip netns exec NAMESPACE COMMAND` (where the harness keeps a host's: MINIDOCK_NETNS_DIR)
in_netns() {
  local ns="$1"; shift
  nsenter --net="${MINIDOCK_NETNS_DIR:-/run/netns}/$ns" "$@"
}

finish() {
  if [ "$FAILED" = 0 ]; then echo "all checks passed"; else echo "some checks failed"; exit 1; fi
}
