# Sourced by scripts/bench and scripts/allocs: the loopback stack both measure against
# (redis-server, wxsim with wxbench apps, a cached token per key) and the daemon's config.
# Needs BIN (the build dir) and NAME (the script's name, for messages and the work dir).
# shellcheck source=ports.sh
. scripts/lib/ports.sh

WORK=$(mktemp -d -t "wxcanary-$NAME.XXXXXX")
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_http() {  # URL SECONDS [CURL ARGS...] (e.g. --cacert FILE for https)
  local deadline=$((SECONDS + $2))
  until curl -fs -o /dev/null --max-time 5 "${@:3}" "$1"; do
    ((SECONDS < deadline)) || { echo "$NAME: $1 did not answer in $2 s" >&2; exit 1; }
    sleep 0.1
  done
}

start_redis() {  # sets REDIS_PORT
  REDIS_PORT=$(free_port)
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    --daemonize no --loglevel warning >"$WORK/redis.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 ||
    { echo "$NAME: redis-server did not start: $(tail -n 3 "$WORK/redis.log")" >&2; exit 1; }
}

# wxsim serving APPS apps wxbench0000000000.. (secret s0..), sets SIM_PORT, SIM_PID and SIM_URL.
# No msg_sec_check limits: the bench's floor run sends ~19k/s with one app's token, and at the
# documented 4,000/min that app would get 45011 (a cheaper answer) from then on. With CERT and
# KEY it serves HTTPS (SIM_URL https://127.0.0.1:PORT); each call starts its own wxsim, so save
# SIM_PORT/SIM_PID/SIM_URL before starting a second one.
SIM_N=0
start_wxsim() {  # APPS THREADS [CERT KEY]
  local a tag="" tls=() scheme=http check=()
  ((SIM_N++ == 0)) || tag=$SIM_N
  if [[ -n ${3:-} ]]; then
    tls=(--tls-cert "$3" --tls-key "$4"); scheme=https; check=(--cacert "$3")
  fi
  for ((a = 0; a < $1; a++)); do printf 'wxbench%010d:s%d\n' "$a" "$a"; done >"$WORK/apps$tag.txt"
  "$BIN/src/sim/wxsim" --apps-file "$WORK/apps$tag.txt" --threads "$2" --port-file "$WORK/sim$tag.port" \
    --token-quota 1000000 --minute-limit /wxa/msg_sec_check=0 \
    --daily-limit /wxa/msg_sec_check=0 "${tls[@]}" >"$WORK/sim$tag.log" 2>&1 &
  SIM_PID=$!
  PIDS+=($SIM_PID)
  for _ in $(seq 1 100); do [[ -s $WORK/sim$tag.port ]] && break; sleep 0.1; done
  SIM_PORT=$(cat "$WORK/sim$tag.port")
  SIM_URL=$scheme://127.0.0.1:$SIM_PORT
  wait_http "$SIM_URL/admin/health" 10 "${check[@]}"
}

# A real token per (app, env) key tok:<app_id>:e<N> in Redis; the probe URLs in $WORK/urls.txt.
fill_tokens() {  # APPS ENVS
  timeout 120 "$BIN/bench/wxbench_fill" "$SIM_PORT" "$REDIS_PORT" "$1" "$2" "$WORK/urls.txt" >&2
}

# The daemon's config: TARGETS (app, env) targets over those keys, 16 workers, msg_sec_check.
# The API is SIM_URL unless BASE_URL is given (CA_FILE: wechat.ca_file for an https BASE_URL);
# the keys are PREFIX:{app_id}:{app_env}, PREFIX tok unless given.
gen_config() {  # TARGETS ENVS INTERVAL TIMEOUT [BASE_URL [CA_FILE [PREFIX]]] > yaml
  awk -v n="$1" -v envs="$2" -v iv="$3" -v to="$4" -v url="${5:-$SIM_URL}" -v ca="${6:-}" \
      -v prefix="${7:-tok}" -v redis="$REDIS_PORT" 'BEGIN {
    printf "wechat: {base_url: \"%s\", timeout: 5s%s}\n", url, ca == "" ? "" : ", ca_file: \"" ca "\""
    print "workers: 16"
    printf "defaults: {interval: %s, timeout: %s, probe: msg_sec_check}\n", iv, to
    printf "redis:\n  main: {address: \"127.0.0.1:%d\"}\napps:\n", redis
    t = 0
    for (a = 0; t < n; a++) {
      printf "  - app_id: wxbench%010d\n    environments:\n", a
      for (e = 0; e < envs && t < n; e++) {
        printf "      - {name: e%d, redis: main, key: \"%s:{app_id}:{app_env}\"}\n", e, prefix; t++
      }
    }
  }'
}
