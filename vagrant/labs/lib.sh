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

finish() {
  if [ "$FAILED" = 0 ]; then echo "all checks passed"; else echo "some checks failed"; exit 1; fi
}
