# Sourced by scripts/demo, scripts/bench and scripts/allocs.

# A free loopback TCP port for a server the script starts. Taken below the kernel's ephemeral
# range (or above it when there is no room below): a port inside it can be the local end of an
# outgoing connection, which the connect() check cannot see, and the server's bind then fails.
free_port() {
  local lo hi p
  read -r lo hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  [[ ${lo:-} =~ ^[0-9]+$ && ${hi:-} =~ ^[0-9]+$ ]] || { lo=32768; hi=60999; }  # Linux's default
  for _ in $(seq 1 200); do
    if ((lo > 11000)); then
      p=$((10000 + RANDOM % (lo - 10000)))
    elif ((hi < 64535)); then
      p=$((hi + 1 + RANDOM % (65535 - hi)))
    else
      p=$((1024 + RANDOM % 64000))  # no room outside it: take the chance
    fi
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  echo "no free loopback port found" >&2
  return 1
}
