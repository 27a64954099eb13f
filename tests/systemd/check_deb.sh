#!/bin/sh
# Builds the release .deb with scripts/package (preset "package": RelWithDebInfo, no
# sanitizers, prefix /usr, in SOURCE_DIR/build/package, incremental: a second run only
# re-packages), then checks it as an admin would get it: lintian reports no errors, it
# unpacks into an empty root (dpkg-deb -x), the unpacked binary is a stripped release build
# whose --version and --config.check on the shipped example config work, the unit reads
# /etc/default/wxcanary, and postinst says what to do next.
#   check_deb.sh SOURCE_DIR
set -eu
src=$1
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

start=$(date +%s)
if ! deb=$("$src/scripts/package" "$tmp/out" 2>"$tmp/package.log"); then
  echo "FAIL: scripts/package"; cat "$tmp/package.log"; exit 1
fi
echo "built $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB) in $(( $(date +%s) - start )) s"
. "$src/build/package/packaging/layout.sh"   # bindir unitdir configdir docdir datadir
[ "$bindir" = /usr/bin ] && [ "$configdir" = /etc/wxcanary ] || {
  echo "FAIL: the package preset is not the Debian layout: bindir=$bindir configdir=$configdir"; exit 1; }
dpkg-deb -c "$deb" | awk '{print $1, $2, $NF}' | sed 's| \./| /|' >"$tmp/contents"

fail=0
expect() {  # MODE PATH: the package holds PATH with that mode, owned by root
  if ! grep -qxF -e "$1 root/root $2" "$tmp/contents"; then
    echo "FAIL: expected $1 root/root $2 in the package"; fail=1
  fi
}
expect -rwxr-xr-x /usr/bin/wxcanary
expect -rw-r--r-- /usr/lib/systemd/system/wxcanary.service
expect -rw-r--r-- /etc/wxcanary/wxcanary.yml
expect -rw-r--r-- /etc/default/wxcanary
expect -rw-r--r-- /usr/share/doc/wxcanary/copyright
expect -rw-r--r-- /usr/share/doc/wxcanary/changelog.gz
expect -rw-r--r-- /usr/share/doc/wxcanary/README.md
expect -rw-r--r-- /usr/share/doc/wxcanary/docs/security.md
expect -rw-r--r-- /usr/share/doc/wxcanary/examples/wxcanary.yml
expect -rw-r--r-- /usr/share/wxcanary/alerts/wxcanary.rules.yml
expect -rw-r--r-- /usr/share/wxcanary/alerts/alertmanager.example.yml
expect -rw-r--r-- /usr/share/wxcanary/alerts/runbook.md
expect -rw-r--r-- /usr/share/wxcanary/dashboards/wxcanary.json
if grep -q '/alerts/tests/' "$tmp/contents"; then
  echo "FAIL: promtool test files do not belong in the package"; fail=1
fi

field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = wxcanary ] || { echo "FAIL: Package: $(field Package)"; fail=1; }
case "$(field Maintainer)" in
  *@localhost*|"") echo "FAIL: Maintainer: '$(field Maintainer)'"; fail=1 ;;
esac
[ "$(field Description | wc -l)" -ge 3 ] || { echo "FAIL: no extended Description"; fail=1; }
# dpkg-shlibdeps found the runtime libraries.
for lib in libcurl libhiredis libyaml-cpp libc6; do
  field Depends | grep -q "$lib" || { echo "FAIL: Depends lacks $lib: $(field Depends)"; fail=1; }
done

# The licence: Debian's machine-readable copyright naming Apache-2.0, as in LICENSE.
root="$tmp/root"
dpkg-deb -x "$deb" "$root"
grep -qx 'License: Apache-2.0' "$root/usr/share/doc/wxcanary/copyright" || {
  echo "FAIL: copyright does not name Apache-2.0"; fail=1; }
grep -q 'Apache License' "$src/LICENSE" && grep -q 'Version 2.0' "$src/LICENSE" || {
  echo "FAIL: LICENSE is not Apache-2.0"; fail=1; }

# The control area: both files under /etc are conffiles (admins' edits survive upgrades).
dpkg-deb -e "$deb" "$tmp/control"
for f in /etc/wxcanary/wxcanary.yml /etc/default/wxcanary; do
  grep -qx "$f" "$tmp/control/conffiles" || { echo "FAIL: $f not in conffiles"; fail=1; }
done
for s in postinst prerm postrm; do
  [ -x "$tmp/control/$s" ] && sh -n "$tmp/control/$s" || { echo "FAIL: $s"; fail=1; }
done
# A first install (configure, no old version) tells the admin what to edit and how to enable.
# Where systemd runs, postinst calls systemctl daemon-reload: only run it where it does not.
if [ ! -d /run/systemd/system ]; then
  sh "$tmp/control/postinst" configure "" >"$tmp/postinst.out" 2>&1 || { echo "FAIL: postinst"; fail=1; }
  for needle in 'Edit /etc/wxcanary/wxcanary.yml' 'LoadCredential=' '--config.check' \
                'systemctl enable --now wxcanary' '/etc/default/wxcanary'; do
    grep -qF -e "$needle" "$tmp/postinst.out" || {
      echo "FAIL: postinst does not say '$needle':"; cat "$tmp/postinst.out"; fail=1; }
  done
  sh "$tmp/control/postinst" configure 0.0.9 >"$tmp/postinst.out" 2>&1
  [ ! -s "$tmp/postinst.out" ] || { echo "FAIL: postinst talks on upgrade:"; cat "$tmp/postinst.out"; fail=1; }
fi

# The unit reads the optional /etc/default/wxcanary and passes $ARGS (split at spaces).
unit="$root/usr/lib/systemd/system/wxcanary.service"
grep -qx 'EnvironmentFile=-/etc/default/wxcanary' "$unit" || { echo "FAIL: no EnvironmentFile="; fail=1; }
grep -qx 'ExecStart=/usr/bin/wxcanary --config.file=/etc/wxcanary/wxcanary.yml $ARGS' "$unit" || {
  echo "FAIL: ExecStart in the packaged unit:"; grep '^ExecStart' "$unit"; fail=1; }
grep -qx 'ARGS=""' "$root/etc/default/wxcanary" || { echo "FAIL: /etc/default/wxcanary sets no ARGS"; fail=1; }
"$here/check_unit.sh" verify "$unit" "$root/usr/bin/wxcanary" || fail=1

# Stripped (no .symtab), with the symbols in the -dbgsym package under the binary's build id.
bin="$root/usr/bin/wxcanary"
if readelf -S "$bin" | grep -q '\.symtab'; then echo "FAIL: /usr/bin/wxcanary is not stripped"; fail=1; fi
ddeb=$(ls "$tmp"/out/wxcanary-dbgsym_*.ddeb 2>/dev/null || true)
build_id=$(readelf -n "$bin" | sed -n 's/.*Build ID: \([0-9a-f]*\).*/\1/p')
if [ -z "$ddeb" ] || [ -z "$build_id" ]; then
  echo "FAIL: no -dbgsym package ($ddeb) or no build id ($build_id)"; fail=1
else
  dbg="./usr/lib/debug/.build-id/$(echo "$build_id" | cut -c1-2)/$(echo "$build_id" | cut -c3-).debug"
  dpkg-deb -c "$ddeb" | grep -qF " $dbg" || { echo "FAIL: $ddeb lacks $dbg"; dpkg-deb -c "$ddeb"; fail=1; }
fi

# The unpacked binary runs (its libraries present), says it is a release build, and accepts
# the packaged config (which is also the default --config.file of a /usr build).
"$bin" --version >"$tmp/version" 2>&1 || { echo "FAIL: wxcanary --version"; cat "$tmp/version"; fail=1; }
cat "$tmp/version"
grep -q '^wxcanary, version ' "$tmp/version" || { echo "FAIL: --version"; fail=1; }
grep -qx '  sanitizers:       none' "$tmp/version" || { echo "FAIL: a sanitizer build was packaged"; fail=1; }
grep -qx '  build type:       RelWithDebInfo' "$tmp/version" || { echo "FAIL: not a release build"; fail=1; }
"$bin" --help | grep -qF -- '--config.file TEXT=/etc/wxcanary/wxcanary.yml' || {
  echo "FAIL: the packaged binary's default config is not /etc/wxcanary/wxcanary.yml"; fail=1; }
"$bin" --config.file="$root/etc/wxcanary/wxcanary.yml" --config.check >"$tmp/check.out" 2>&1 || {
  echo "FAIL: the example config does not load:"; cat "$tmp/check.out"; fail=1; }
"$here/check_example_config.sh" "$root/etc/wxcanary/wxcanary.yml" "$bin" || fail=1

# lintian (Debian 12's, installed by scripts/bootstrap): no errors. Warnings are printed.
if ! command -v lintian >/dev/null; then
  echo "FAIL: lintian is not installed (scripts/bootstrap installs it)"; fail=1
else
  lintian --tag-display-limit 0 "$deb" >"$tmp/lintian.out" 2>&1 || true
  cat "$tmp/lintian.out"
  if grep -q '^E: ' "$tmp/lintian.out"; then echo "FAIL: lintian reports errors"; fail=1; fi
fi

[ $fail = 0 ] && echo "ok: package contents, control, licence, postinst, unit, binary, lintian"
exit $fail
