#!/bin/sh
# Offline checks of the systemd unit, for ctest (systemd need not be PID 1).
#   check_unit.sh verify   UNIT BINARY   systemd-analyze verify passes with no complaint
#   check_unit.sh security UNIT MAX      systemd-analyze security exposure <= MAX
#
# verify on systemd 252: it checks that ExecStart's binary exists, so it runs on a temp copy
# whose ExecStart points at BINARY (--root=DIR would need a whole OS tree: sysinit.target,
# /bin/kill, ...). It exits 0 on unknown keys and unparsable values (it only warns), so any
# output at all is a failure here.
set -eu
mode=$1 unit=$2 arg=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

case $mode in
verify)
  name=$(basename "$unit")
  grep -q '^ExecStart=/' "$unit" || { echo "FAIL: $unit has no absolute ExecStart="; exit 1; }
  sed "s|^ExecStart=[^ ]*|ExecStart=$arg|" "$unit" >"$tmp/$name"
  if ! systemd-analyze verify --man=no "$tmp/$name" >"$tmp/out" 2>&1; then
    echo "FAIL: systemd-analyze verify $unit:"; cat "$tmp/out"; exit 1
  fi
  if [ -s "$tmp/out" ]; then
    echo "FAIL: systemd-analyze verify $unit complained:"; cat "$tmp/out"; exit 1
  fi
  echo "ok: systemd-analyze verify $unit"
  ;;
security)
  systemd-analyze security --offline=true --no-pager "$unit" >"$tmp/out" 2>&1 || {
    echo "FAIL: systemd-analyze security $unit:"; cat "$tmp/out"; exit 1; }
  # "→ Overall exposure level for wxcanary.service: 1.1 OK 🙂"
  score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9][0-9.]*\) .*/\1/p' "$tmp/out")
  if [ -z "$score" ]; then
    echo "FAIL: no exposure level in the output of systemd-analyze security:"; cat "$tmp/out"; exit 1
  fi
  echo "exposure level: $score (max $arg)"
  if awk -v s="$score" -v m="$arg" 'BEGIN { exit !(s > m) }'; then
    echo "FAIL: exposure $score is above $arg; what still counts:"
    grep '✗' "$tmp/out" || true
    exit 1
  fi
  ;;
*)
  echo "usage: $0 verify UNIT BINARY | security UNIT MAX"; exit 2 ;;
esac
