#!/usr/bin/env bash
# Try the cluster on one machine: Redis, Mosquitto, InfluxDB, N instances and nginx.
#
#   deploy/run-cluster.sh [N] [PORT]     start (default N=3, nginx on PORT=8080)
#   deploy/run-cluster.sh stop           stop everything it started
#
# Everything listens on 127.0.0.1 only and keeps its files under
# $BHS_CLUSTER_DIR (default ./cluster-run). Instances listen on PORT+1..PORT+N;
# open http://127.0.0.1:PORT/ for the dashboard through nginx. Needs Debian's
# redis-server, mosquitto, influxdb and nginx (apt-get install redis-server
# mosquitto influxdb nginx-light). Debian's influxd is 1.6.7, older than the
# v2 write API our client uses, so the tests' small v2 bridge runs in front of
# it (testkit/services.py); with InfluxDB 1.8+ or 2.x point INFLUXDB_URL at it.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="${BHS_CLUSTER_DIR:-$PWD/cluster-run}"

stop() {
  [ -d "$DIR/pids" ] || { echo "nothing to stop in $DIR"; return; }
  for pidfile in "$DIR"/pids/*; do
    [ -e "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null && echo "stopped $(basename "$pidfile") ($pid)" || true
    rm -f "$pidfile"
  done
}

if [ "${1:-}" = "stop" ]; then stop; exit 0; fi

N="${1:-3}"
PORT="${2:-8080}"
REDIS_PORT=$((PORT + 100)); MQTT_PORT=$((PORT + 101))
INFLUX_PORT=$((PORT + 102)); INFLUX_RPC=$((PORT + 103)); BRIDGE_PORT=$((PORT + 104))
mkdir -p "$DIR"/{pids,logs,redis,mosquitto,influxdb,nginx}

run() {   # run NAME COMMAND...: in the background, logged, remembered
  local name=$1; shift
  "$@" >"$DIR/logs/$name.log" 2>&1 &
  echo $! >"$DIR/pids/$name"
}

wait_port() {   # wait_port PORT [SECONDS]
  for _ in $(seq $((${2:-10} * 10))); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "port $1 did not open; see $DIR/logs" >&2; exit 1
}

# Redis: the append-only file keeps the stream across a Redis restart.
run redis redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$DIR/redis" \
  --appendonly yes --appendfsync everysec --save "" --protected-mode no
wait_port "$REDIS_PORT"

cat >"$DIR/mosquitto/mosquitto.conf" <<CONF
user root
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
persistence true
persistence_location $DIR/mosquitto/
max_queued_messages 100000
# Instances acknowledge a message after ingesting it: allow many in flight.
max_inflight_messages 1000
log_dest stderr
CONF
run mosquitto mosquitto -c "$DIR/mosquitto/mosquitto.conf"
wait_port "$MQTT_PORT"

influxd config 2>/dev/null \
  | sed -e "s#/var/lib/influxdb#$DIR/influxdb#g" \
        -e "s#^bind-address = .*#bind-address = \"127.0.0.1:$INFLUX_RPC\"#" \
        -e "s#^  bind-address = \":8086\"#  bind-address = \"127.0.0.1:$INFLUX_PORT\"#" \
        -e "s#reporting-enabled = true#reporting-enabled = false#" \
  >"$DIR/influxdb/influxdb.conf"
run influxd influxd -config "$DIR/influxdb/influxdb.conf"
wait_port "$INFLUX_PORT"
curl -s -XPOST "http://127.0.0.1:$INFLUX_PORT/query" --data-urlencode "q=CREATE DATABASE water" >/dev/null
run influx-bridge python -m testkit.services bridge "http://127.0.0.1:$INFLUX_PORT" "$BRIDGE_PORT"
wait_port "$BRIDGE_PORT"

# Every instance must accept the same operator tokens.
if [ -z "${OPERATOR_TOKENS:-}" ]; then
  [ -s "$DIR/operator_token" ] || python -c "import secrets; print(secrets.token_urlsafe(24))" >"$DIR/operator_token"
  OPERATOR_TOKENS="operator=$(cat "$DIR/operator_token")"
fi
UPSTREAMS=""
for i in $(seq 1 "$N"); do
  port=$((PORT + i))
  run "bhs-$i" env INSTANCE_ID="bhs-$i" HOST=127.0.0.1 PORT="$port" \
    INSTANCE_DIR="$DIR/instance-$i" REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" \
    MQTT_URL="mqtt://127.0.0.1:$MQTT_PORT" \
    INFLUXDB_URL="http://127.0.0.1:$BRIDGE_PORT" INFLUXDB_TOKEN=local INFLUXDB_ORG=bhs \
    INFLUXDB_BUCKET=water OPERATOR_TOKENS="$OPERATOR_TOKENS" \
    SIMULATOR="${SIMULATOR:-on}" python run.py
  UPSTREAMS+="        server 127.0.0.1:$port max_fails=1 fail_timeout=5s;"$'\n'
done
for i in $(seq 1 "$N"); do wait_port $((PORT + i)) 120; done

python - "$DIR/nginx/nginx.conf" "$PORT" "$DIR/nginx" "$UPSTREAMS" <<'PY'
import sys, pathlib
target, port, prefix, upstreams = sys.argv[1:]
text = pathlib.Path("deploy/nginx.conf.template").read_text()
text = (text.replace("{{LISTEN}}", f"127.0.0.1:{port}")
        .replace("{{UPSTREAMS}}", upstreams.rstrip("\n"))
        .replace("{{PREFIX}}", prefix))
pathlib.Path(target).write_text(text)
PY
run nginx nginx -c "$DIR/nginx/nginx.conf" -p "$DIR/nginx" -g "daemon off;"
wait_port "$PORT"

echo "cluster of $N up: http://127.0.0.1:$PORT/  (Redis $REDIS_PORT, MQTT $MQTT_PORT, InfluxDB $INFLUX_PORT)"
echo "operator token in $DIR/operator_token (unless OPERATOR_TOKENS was given); stop with: $0 stop"
