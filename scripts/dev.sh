#!/usr/bin/env bash
# The one entry point behind `make run` / `make test` (see README).
#   scripts/dev.sh install   create .venv and install the pinned requirements, and the pinned
#                            front-end libraries (package-lock.json: npm ci into node_modules/)
#   scripts/dev.sh services  make sure PostgreSQL and Redis answer; print the URLs in use
#   scripts/dev.sh migrate   services + tenants_migrate
#   scripts/dev.sh run       migrate + demo tenant + web, worker and beat (honcho)
#   scripts/dev.sh stop      stop what `run` started (honcho and its processes, local servers under .data/)
#   scripts/dev.sh test      services + ruff + pytest
#
# PostgreSQL/Redis: DATABASE_URL / REDIS_URL are used when they answer (defaults: the local servers
# on their standard ports). Otherwise the locally installed servers are started on a free port with
# their data under .data/ (installed with apt first when missing and we are root).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DATA="$ROOT/.data"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
mkdir -p "$DATA"
# what `run` writes and `stop` reads (overridable so a test can run a second instance beside yours)
ENV_FILE="${MONETIZE_ENV_FILE:-$ROOT/.env}"
RUN_PID="${MONETIZE_RUN_PIDFILE:-$DATA/run.pid}"

say() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

APT_UPDATED=""
apt_install() {
  if [ "$(id -u)" != 0 ]; then
    die "$* is not installed and I am not root. Install it (sudo apt-get install -y $*) or point the URL variables at running servers, then re-run."
  fi
  if [ -z "$APT_UPDATED" ]; then
    say "apt-get update"
    apt-get update -qq >&2
    APT_UPDATED=1
  fi
  say "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

find_python() {
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(0 if sys.version_info[:2] >= (3, 11) else 1)'; then
      echo "$candidate"
      return
    fi
  done
  die "Python 3.11+ is required (apt-get install python3)."
}

install() {
  if [ ! -x "$PY" ]; then
    local base
    base="$(find_python)"
    say "creating .venv with $base"
    if ! "$base" -m venv "$VENV" >/dev/null 2>&1; then
      rm -rf "$VENV"
      apt_install python3-venv
      "$base" -m venv "$VENV"
    fi
  fi
  local stamp
  stamp="$(cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-16)"
  if [ "$(cat "$VENV/.requirements-stamp" 2>/dev/null)" != "$stamp" ]; then
    say "installing pinned requirements"
    "$PY" -m pip install -q --disable-pip-version-check -r requirements-dev.txt
    echo "$stamp" >"$VENV/.requirements-stamp"
  fi
  assets
}

assets() {
  # the pages' CSS framework, htmx, Chart.js (and axe-core for the tests) from the npm registry,
  # exactly as package-lock.json pins them; whitenoise serves the files kernel/assets.py lists
  if ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm
  fi
  local stamp
  stamp="$(cat package.json package-lock.json | sha256sum | cut -c1-16)"
  if [ "$(cat node_modules/.monetize-stamp 2>/dev/null)" != "$stamp" ]; then
    say "installing front-end libraries (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error >&2
    echo "$stamp" >node_modules/.monetize-stamp
  fi
}

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

pg_answers() { # $1: a database URL; true when its server accepts connections
  "$PY" - "$1" <<'PYEOF' >/dev/null 2>&1
import sys, psycopg
from urllib.parse import urlsplit, urlunsplit
url = urlsplit(sys.argv[1])
psycopg.connect(urlunsplit(url._replace(path="/postgres")), connect_timeout=3).close()
PYEOF
}

pg_ensure_database() {
  "$PY" - "$1" <<'PYEOF'
import sys, psycopg
from urllib.parse import urlsplit, urlunsplit
url = urlsplit(sys.argv[1])
name = url.path.lstrip("/") or "monetize"
with psycopg.connect(urlunsplit(url._replace(path="/postgres")), autocommit=True, connect_timeout=3) as conn:
    if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
        conn.execute(f'CREATE DATABASE "{name}"')
        print(f"created database {name}", file=sys.stderr)
PYEOF
}

pg_start_local() {
  local bindir pgdata port
  bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [ -z "$bindir" ]; then
    apt_install postgresql
    bindir="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  fi
  pgdata="$DATA/postgres"
  port="$(cat "$DATA/postgres.port" 2>/dev/null || free_port)"
  echo "$port" >"$DATA/postgres.port"
  # initdb/postgres refuse to run as root: run them as the postgres user on a dir it owns
  local as=()
  if [ "$(id -u)" = 0 ]; then
    as=(runuser -u postgres --)
    mkdir -p "$pgdata"
    chown postgres "$DATA" "$pgdata"
    chmod 700 "$pgdata"
  fi
  if [ ! -f "$pgdata/PG_VERSION" ]; then
    say "initdb $pgdata"
    "${as[@]}" "$bindir/initdb" -D "$pgdata" -U postgres --auth=trust -E UTF8 >/dev/null
  fi
  if ! "${as[@]}" "$bindir/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; then
    say "starting PostgreSQL ($bindir) on 127.0.0.1:$port"
    "${as[@]}" "$bindir/pg_ctl" -D "$pgdata" -l "$pgdata/server.log" -w -o "-p $port -k $pgdata -c listen_addresses=127.0.0.1" start >/dev/null
  fi
  DATABASE_URL="postgres://postgres@127.0.0.1:$port/monetize"
}

redis_answers() {
  "$PY" -c 'import sys, redis; redis.Redis.from_url(sys.argv[1], socket_connect_timeout=2).ping()' "$1" >/dev/null 2>&1
}

redis_start_local() {
  local port
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
  port="$(cat "$DATA/redis.port" 2>/dev/null || free_port)"
  echo "$port" >"$DATA/redis.port"
  mkdir -p "$DATA/redis"
  say "starting Redis on 127.0.0.1:$port"
  # apt's redis-server does not start by itself here; nothing needs persisting for dev and tests
  redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
    --dir "$DATA/redis" --pidfile "$DATA/redis/redis.pid" --logfile "$DATA/redis/redis.log"
  for _ in $(seq 50); do redis_answers "redis://127.0.0.1:$port/0" && break; sleep 0.1; done
  REDIS_URL="redis://127.0.0.1:$port/0"
}

services() {
  DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/monetize}"
  if ! pg_answers "$DATABASE_URL"; then
    say "PostgreSQL at ${DATABASE_URL%%\?*} does not answer; using a local one under .data/"
    pg_start_local
    pg_answers "$DATABASE_URL" || die "PostgreSQL did not come up (see $DATA/postgres/server.log)."
  fi
  pg_ensure_database "$DATABASE_URL"
  REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
  if ! redis_answers "$REDIS_URL"; then
    say "Redis at $REDIS_URL does not answer; using a local one under .data/"
    redis_start_local
    redis_answers "$REDIS_URL" || die "Redis did not come up (see $DATA/redis/redis.log)."
  fi
  export DATABASE_URL REDIS_URL
  say "PostgreSQL: $(echo "$DATABASE_URL" | sed -E 's#//([^:@/]+):[^@]*@#//\1:***@#')   Redis: $REDIS_URL"
}

migrate() {
  services
  say "migrating (public schema, template schema, tenants)"
  "$PY" manage.py tenants_migrate
}

run() {
  migrate
  export DEBUG="${DEBUG:-1}" PORT="${PORT:-8000}"
  # prometheus-client multiprocess mode: one directory shared by the gunicorn workers, emptied per start
  export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-$DATA/prometheus}"
  rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
  # .env: the services, port and demo key this run uses; manage.py (and honcho) read it, so the
  # README's `manage.py …` commands and curl examples talk to what `make run` started
  {
    echo "# written by make run (scripts/dev.sh); manage.py and the README's examples read it"
    echo "DATABASE_URL=$DATABASE_URL"
    echo "REDIS_URL=$REDIS_URL"
    echo "PORT=$PORT"
  } >"$ENV_FILE"
  "$PY" manage.py demo_setup --port "$PORT" --env-file "$ENV_FILE"
  echo $$ >"$RUN_PID" # honcho replaces this shell (exec): `make stop` signals it
  say "starting web (${WEB_SERVER:-granian} on :$PORT), a worker per queue (inbox, deliveries, housekeeping) and beat; Ctrl-C stops them all"
  exec "$VENV/bin/honcho" -f Procfile start -e "$ENV_FILE" web inbox deliveries housekeeping beat
}

stop() {
  # what `make run` started: honcho (it stops web and the workers), then the PostgreSQL/Redis that
  # scripts/dev.sh started under .data/ (servers it found already running are left alone)
  local pid bindir
  pid="$(cat "$RUN_PID" 2>/dev/null || true)"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    say "stopping make run (honcho, pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -KILL -- "-$pid" 2>/dev/null
  fi
  rm -f "$RUN_PID"
  [ "${STOP_SERVICES:-1}" = 1 ] || return 0
  if [ -f "$DATA/postgres/postmaster.pid" ]; then
    bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    say "stopping the local PostgreSQL under .data/"
    if [ "$(id -u)" = 0 ]; then
      runuser -u postgres -- "$bindir/pg_ctl" -D "$DATA/postgres" -m fast stop >/dev/null || true
    else
      "$bindir/pg_ctl" -D "$DATA/postgres" -m fast stop >/dev/null || true
    fi
  fi
  if [ -f "$DATA/redis/redis.pid" ]; then
    say "stopping the local Redis under .data/"
    kill -TERM "$(cat "$DATA/redis/redis.pid")" 2>/dev/null || true
    rm -f "$DATA/redis/redis.pid"
  fi
}

browser() {
  # Debian's chromium for the browser tests (Playwright drives it; it never downloads a browser)
  if [ -x /usr/bin/chromium ]; then return; fi
  if [ "$(id -u)" = 0 ]; then
    apt_install chromium
  else
    say "chromium is not installed and I am not root: the browser tests will be skipped (sudo apt-get install chromium)"
  fi
}

test_() {
  services
  browser
  say "ruff"
  "$VENV/bin/ruff" check .
  "$VENV/bin/ruff" format --check .
  say "pytest"
  "$VENV/bin/pytest" "$@"
}

bench_scripts() {
  # BENCH="bench/ingest.py --query-events 300000 bench/webhooks.py": each word naming a bench/*.py
  # file starts a script, the words after it (up to the next script) are that script's arguments
  local word
  local -a cmd=()
  [ $# -gt 0 ] || set -- bench/[!_]*.py
  for word in "$@"; do
    if [[ "$word" == *.py && -f "$word" ]]; then
      [ ${#cmd[@]} -eq 0 ] || { say "${cmd[*]}"; "$PY" "${cmd[@]}"; }
      cmd=("$word")
    elif [ ${#cmd[@]} -gt 0 ]; then
      cmd+=("$word")
    else
      die "bench: $word is not a bench script (usage: make bench BENCH=\"bench/<name>.py [args]\")"
    fi
  done
  [ ${#cmd[@]} -eq 0 ] || { say "${cmd[*]}"; "$PY" "${cmd[@]}"; }
}

bench() {
  services
  bench_scripts "$@"
}

# sourced (tests source this file to call one function): define the functions only
[[ "${BASH_SOURCE[0]}" == "$0" ]] || return 0

export PATH="$VENV/bin:$PATH"
cmd="${1:-}"
shift || true
case "$cmd" in
  install) install ;;
  assets) assets ;;
  services) install; services; echo "DATABASE_URL=$DATABASE_URL"; echo "REDIS_URL=$REDIS_URL" ;;
  migrate) install; migrate ;;
  run) install; run ;;
  stop) stop ;;
  test) install; test_ "$@" ;;
  bench) install; bench "$@" ;;
  *) die "usage: scripts/dev.sh install|assets|services|migrate|run|stop|test|bench" ;;
esac
