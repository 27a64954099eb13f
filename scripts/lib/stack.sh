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

wait_http() {  # URL SECONDS
  local deadline=$((SECONDS + $2))
  until curl -fs -o /dev/null "$1"; do
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

# wxsim serving APPS apps wxbench0000000000.. (secret s0..), sets SIM_PORT and SIM_PID. No
# msg_sec_check limits: the bench's floor run sends ~19k/s with one app's token, and at the
# documented 4,000/min that app would get 45011 (a cheaper answer) from then on.
start_wxsim() {  # APPS THREADS
  local a
  for ((a = 0; a < $1; a++)); do printf 'wxbench%010d:s%d\n' "$a" "$a"; done >"$WORK/apps.txt"
  "$BIN/src/sim/wxsim" --apps-file "$WORK/apps.txt" --threads "$2" --port-file "$WORK/sim.port" \
    --token-quota 1000000 --minute-limit /wxa/msg_sec_check=0 \
    --daily-limit /wxa/msg_sec_check=0 >"$WORK/sim.log" 2>&1 &
  SIM_PID=$!
  PIDS+=($SIM_PID)
  for _ in $(seq 1 100); do [[ -s $WORK/sim.port ]] && break; sleep 0.1; done
  SIM_PORT=$(cat "$WORK/sim.port")
  wait_http "http://127.0.0.1:$SIM_PORT/admin/health" 10
}

# A real token per (app, env) key tok:<app_id>:e<N> in Redis; the probe URLs in $WORK/urls.txt.
fill_tokens() {  # APPS ENVS
  timeout 120 "$BIN/bench/wxbench_fill" "$SIM_PORT" "$REDIS_PORT" "$1" "$2" "$WORK/urls.txt" >&2
}

# The daemon's config: TARGETS (app, env) targets over those keys, 16 workers, msg_sec_check.
gen_config() {  # TARGETS ENVS INTERVAL TIMEOUT > yaml
  awk -v n="$1" -v envs="$2" -v iv="$3" -v to="$4" -v sim="$SIM_PORT" -v redis="$REDIS_PORT" 'BEGIN {
    printf "wechat: {base_url: \"http://127.0.0.1:%d\", timeout: 5s}\n", sim
    print "workers: 16"
    printf "defaults: {interval: %s, timeout: %s, probe: msg_sec_check}\n", iv, to
    printf "redis:\n  main: {address: \"127.0.0.1:%d\"}\napps:\n", redis
    t = 0
    for (a = 0; t < n; a++) {
      printf "  - app_id: wxbench%010d\n    environments:\n", a
      for (e = 0; e < envs && t < n; e++) {
        printf "      - {name: e%d, redis: main, key: \"tok:{app_id}:{app_env}\"}\n", e; t++
      }
    }
  }'
}
