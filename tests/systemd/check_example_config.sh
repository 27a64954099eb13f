#!/bin/sh
# The shipped example config loads as is, and with its credential lines switched on it reads
# the secrets from $CREDENTIALS_DIRECTORY (what LoadCredential= provides) without printing them.
#   check_example_config.sh EXAMPLE_YML WXCANARY_BINARY
set -eu
example=$1 bin=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$bin" --config.file="$example" --config.check >"$tmp/out" 2>&1 || {
  echo "FAIL: the example config does not load:"; cat "$tmp/out"; exit 1; }

sed -e 's/^\( *\)# \(password_credential: redis-main\)/\1\2/' \
    -e 's/^\( *\)# \(secret_credential: wx1234567890abcdef\)/\1\2/' "$example" >"$tmp/wxcanary.yml"
for key in 'password_credential: redis-main' 'secret_credential: wx1234567890abcdef'; do
  grep -q "^ *$key" "$tmp/wxcanary.yml" || { echo "FAIL: no commented '$key' to switch on"; exit 1; }
done
mkdir "$tmp/creds"
printf 'redis-password-do-not-print\n' >"$tmp/creds/redis-main"
printf 'app-secret-do-not-print\n' >"$tmp/creds/wx1234567890abcdef"

# Without the directory the loader names what is missing.
if env -u CREDENTIALS_DIRECTORY "$bin" --config.file="$tmp/wxcanary.yml" --config.check >"$tmp/out" 2>&1; then
  echo "FAIL: loaded credentials without \$CREDENTIALS_DIRECTORY"; exit 1
fi
# ... and says how to run the check by hand (README "Deploying": systemd credentials).
for needle in 'password_credential: credential "redis-main" needs $CREDENTIALS_DIRECTORY' \
              'LoadCredential=' 'CREDENTIALS_DIRECTORY=DIR wxcanary --config.check'; do
  grep -qF -e "$needle" "$tmp/out" || { echo "FAIL: error lacks '$needle':"; cat "$tmp/out"; exit 1; }
done
[ "$(wc -l <"$tmp/out")" -eq 1 ] || { echo "FAIL: error is not one line:"; cat "$tmp/out"; exit 1; }

CREDENTIALS_DIRECTORY="$tmp/creds" "$bin" --config.file="$tmp/wxcanary.yml" --config.check \
  >"$tmp/out" 2>&1 || { echo "FAIL: credentials not loaded:"; cat "$tmp/out"; exit 1; }
if grep -q 'do-not-print' "$tmp/out"; then echo "FAIL: a secret was printed"; exit 1; fi
echo "ok: example config loads, with and without credentials"
