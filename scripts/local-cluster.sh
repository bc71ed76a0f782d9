#!/usr/bin/env bash
# The scale-out shape on one machine, without Docker: Redis (the broker, append-only), PostgreSQL, the model
# server (`lofi serve`), N `lofi worker` processes and, when DISCORD_TOKEN is set, `lofi bot` over them.
#
#   scripts/local-cluster.sh start [--workers N] [--no-bot]   # make cluster
#   scripts/local-cluster.sh stop                             # make cluster-stop
#   scripts/local-cluster.sh status
#
# Everything lives in var/cluster/ (data, logs, pids); var/cluster/env holds BROKER_URL, DATABASE_URL and
# SERVING_ADDRESS for other commands (`set -a; . var/cluster/env`). Ports: CLUSTER_PORT_BASE (default 16370)
# + 0 Redis, + 1 PostgreSQL, + 2 the model server. The data are throw-away: `stop` removes them.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DIR=$ROOT/var/cluster
BIN=$ROOT/.venv/bin
BASE=${CLUSTER_PORT_BASE:-16370}
REDIS_PORT=$BASE PG_PORT=$((BASE + 1)) SERVING_PORT_=$((BASE + 2))

pg_bindir() { dirname "$(ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)"; }
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local until=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $until ] || { echo "cluster: $what did not come up (logs in $DIR)" >&2; exit 1; }
    sleep 0.3
  done
}

start() {
  local workers=2 bot=1
  while [ $# -gt 0 ]; do
    case $1 in
      --workers) workers=$2; shift 2 ;;
      --no-bot) bot=0; shift ;;
      *) echo "cluster: unknown option $1" >&2; exit 2 ;;
    esac
  done
  [ ! -e "$DIR/env" ] || { echo "cluster: already running (scripts/local-cluster.sh stop first)" >&2; exit 1; }
  mkdir -p "$DIR"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$DIR" --appendonly yes --appendfsync everysec \
    --save "" --daemonize yes --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log"
  wait_for 20 "Redis" redis-cli -p "$REDIS_PORT" ping

  local pg; pg=$(pg_bindir)
  mkdir -p "$DIR/pg"; [ "$(id -u)" -ne 0 ] || chown postgres "$DIR/pg"
  as_pg "$pg/initdb" -D "$DIR/pg/data" -U lofi -A trust -E UTF8 --locale=C --no-sync >"$DIR/pg.log" 2>&1
  as_pg "$pg/pg_ctl" -D "$DIR/pg/data" -l "$DIR/pg/server.log" -w \
    -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $DIR/pg" start >>"$DIR/pg.log"
  as_pg "$pg/createdb" -h 127.0.0.1 -p "$PG_PORT" -U lofi lofi

  cat >"$DIR/env" <<ENV
BROKER_URL=redis://127.0.0.1:$REDIS_PORT/0
DATABASE_URL=postgresql+asyncpg://lofi@127.0.0.1:$PG_PORT/lofi
SERVING_ADDRESS=127.0.0.1:$SERVING_PORT_
ENV
  set -a; . "$DIR/env"; set +a

  "$BIN/lofi" serve --port "$SERVING_PORT_" >"$DIR/serving.log" 2>&1 &
  echo $! >"$DIR/serving.pid"
  wait_for 120 "the model server" bash -c "exec 3<>/dev/tcp/127.0.0.1/$SERVING_PORT_"
  for i in $(seq 1 "$workers"); do
    "$BIN/lofi" worker --name "lofi@local-$i" >"$DIR/worker-$i.log" 2>&1 &
    echo $! >"$DIR/worker-$i.pid"
  done
  for i in $(seq 1 "$workers"); do wait_for 180 "worker $i" grep -q " ready." "$DIR/worker-$i.log"; done
  if [ "$bot" -eq 1 ] && [ -n "${DISCORD_TOKEN:-}" ]; then
    "$BIN/lofi" bot >"$DIR/bot.log" 2>&1 &
    echo $! >"$DIR/bot.pid"
  elif [ "$bot" -eq 1 ]; then
    echo "cluster: DISCORD_TOKEN is not set: no bot started (the workers wait for jobs)"
  fi
  echo "cluster: up: Redis :$REDIS_PORT, PostgreSQL :$PG_PORT, model server :$SERVING_PORT_, $workers worker(s); env in $DIR/env"
}

stop() {
  for f in "$DIR"/bot.pid "$DIR"/worker-*.pid "$DIR"/serving.pid; do
    [ -e "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
  done
  for f in "$DIR"/bot.pid "$DIR"/worker-*.pid "$DIR"/serving.pid; do
    [ -e "$f" ] || continue
    for _ in $(seq 1 100); do kill -0 "$(cat "$f")" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$(cat "$f")" 2>/dev/null || true
  done
  [ ! -d "$DIR/pg/data" ] || as_pg "$(pg_bindir)/pg_ctl" -D "$DIR/pg/data" -m fast -w stop >/dev/null 2>&1 || true
  [ ! -e "$DIR/redis.pid" ] || redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$DIR"
  echo "cluster: stopped"
}

status() {
  [ -e "$DIR/env" ] || { echo "cluster: not running"; return; }
  cat "$DIR/env"
  for f in "$DIR"/*.pid; do
    if kill -0 "$(cat "$f")" 2>/dev/null; then state=running; else state=dead; fi
    echo "$(basename "$f" .pid): $state"
  done
}

case ${1:-} in
  start) shift; start "$@" ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start [--workers N] [--no-bot] | stop | status" >&2; exit 2 ;;
esac
