#!/bin/sh
# Builds the .deb with cpack in BUILD_DIR (output into a temp dir) and checks what it holds.
#   check_deb.sh BUILD_DIR
# The expected paths come from BUILD_DIR/packaging/layout.sh (written by cmake/packaging.cmake
# for the configured prefix), so the check holds for /usr (the Debian layout) as for /usr/local.
set -eu
build=$1
. "$build/packaging/layout.sh"   # bindir unitdir configdir docdir datadir
here=$(dirname "$0")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if ! cpack -G DEB --config "$build/CPackConfig.cmake" -B "$tmp/out" >"$tmp/cpack.log" 2>&1; then
  echo "FAIL: cpack -G DEB"; cat "$tmp/cpack.log"; exit 1
fi
deb=$(ls "$tmp"/out/*.deb)
echo "built $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB)"
dpkg-deb -c "$deb" | awk '{print $1, $NF}' | sed 's| \./| /|' >"$tmp/contents"

fail=0
expect() {  # MODE PATH: the package holds PATH with that mode
  if ! grep -qxF -e "$1 $2" "$tmp/contents"; then
    echo "FAIL: expected $1 $2 in the package"; fail=1
  fi
}
expect -rwxr-xr-x "$bindir/wxcanary"
expect -rw-r--r-- "$unitdir/wxcanary.service"
expect -rw-r--r-- "$configdir/wxcanary.yml"
expect -rw-r--r-- "$docdir/examples/wxcanary.yml"
expect -rw-r--r-- "$datadir/wxcanary/alerts/wxcanary.rules.yml"
expect -rw-r--r-- "$datadir/wxcanary/alerts/alertmanager.example.yml"
expect -rw-r--r-- "$datadir/wxcanary/alerts/runbook.md"
expect -rw-r--r-- "$datadir/wxcanary/dashboards/wxcanary.json"
if grep -q '/alerts/tests/' "$tmp/contents"; then
  echo "FAIL: promtool test files do not belong in the package"; fail=1
fi

field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = wxcanary ] || { echo "FAIL: Package: $(field Package)"; fail=1; }
[ -n "$(field Maintainer)" ] || { echo "FAIL: no Maintainer"; fail=1; }
# dpkg-shlibdeps found the runtime libraries.
for lib in libcurl libhiredis libyaml-cpp libc6; do
  field Depends | grep -q "$lib" || { echo "FAIL: Depends lacks $lib: $(field Depends)"; fail=1; }
done

# The control area: the config is a conffile (admins' edits survive upgrades); scripts run.
dpkg-deb -e "$deb" "$tmp/control"
grep -qx "$configdir/wxcanary.yml" "$tmp/control/conffiles" || {
  echo "FAIL: conffiles:"; cat "$tmp/control/conffiles"; fail=1; }
for s in postinst prerm postrm; do
  [ -x "$tmp/control/$s" ] && sh -n "$tmp/control/$s" || { echo "FAIL: $s"; fail=1; }
done

# The unit as installed by the package points at the packaged binary and config, and verifies.
dpkg-deb -x "$deb" "$tmp/root"
unit="$tmp/root$unitdir/wxcanary.service"
grep -qx "ExecStart=$bindir/wxcanary --config.file=$configdir/wxcanary.yml" "$unit" || {
  echo "FAIL: ExecStart in the packaged unit:"; grep '^ExecStart' "$unit"; fail=1; }
"$here/check_unit.sh" verify "$unit" "$tmp/root$bindir/wxcanary" || fail=1
# The packaged binary runs (stripped, its libraries present) and accepts the packaged config.
"$tmp/root$bindir/wxcanary" --version >/dev/null || { echo "FAIL: wxcanary --version"; fail=1; }
"$tmp/root$bindir/wxcanary" --config.file="$tmp/root$configdir/wxcanary.yml" --config.check \
  >"$tmp/check.out" 2>&1 || { echo "FAIL: the example config does not load:"; cat "$tmp/check.out"; fail=1; }

[ $fail = 0 ] && echo "ok: package contents, control fields, conffiles, unit"
exit $fail
