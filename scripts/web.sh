#!/usr/bin/env bash
# The web server, as the Procfile's `web:` runs it (make run, tests/browser/test_keepalive.py).
#
#   WEB_SERVER=granian (default)  Granian's HTTP/1.1 server (Rust, hyper) calling the WSGI app on
#                                 WEB_THREADS blocking threads in each of WEB_CONCURRENCY workers.
#                                 Parsing HTTP and keeping idle keep-alive connections cost no Python:
#                                 bench/entitlements.py measured x1.5 the checks/s of gunicorn's
#                                 balanced worker in the same run, at two thirds of the server CPU.
#   WEB_SERVER=gunicorn           gunicorn with monetize.gunicorn_worker.BalancedThreadWorker. Its
#                                 own answers to unparseable requests (400/414/431) are our JSON
#                                 error shape (gunicorn.conf.py); Granian's are status lines with
#                                 no body.
#
# Granian ends the whole server when a worker it has just respawned dies again within 5.5 s (its
# "crash loop" rule); honcho would then stop every process of `make run`. This script starts it
# again instead, so killing workers costs a few seconds of service, never the service.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PORT="${PORT:-8000}"
HOST="${WEB_HOST:-0.0.0.0}"
# One thread per worker, one worker more than there are cores (bench/entitlements.py, same run,
# 2 cores: a check's server-side p99 0.19-0.30 ms with 2-3 single-threaded workers against
# 0.58-0.88 ms with 2 workers x 2 threads, whose threads hand the GIL back and forth on every
# request). A request waiting on a provider holds its worker: WEB_CONCURRENCY is how many can wait.
# At most 8 by default (about 155 MB each): a bigger machine's operator sets WEB_CONCURRENCY.
cores="$(nproc 2>/dev/null || echo 1)"
WORKERS="${WEB_CONCURRENCY:-$(( cores + 1 < 8 ? cores + 1 : 8 ))}"
THREADS="${WEB_THREADS:-1}"
LOG_LEVEL="$(printf '%s' "${WEB_LOG_LEVEL:-info}" | tr '[:upper:]' '[:lower:]')"

if [ "${WEB_SERVER:-granian}" = gunicorn ]; then
  exec gunicorn monetize.wsgi --bind "$HOST:$PORT" --workers "$WORKERS" \
    --worker-class monetize.gunicorn_worker.BalancedThreadWorker --threads "$THREADS" \
    $([ "${WEB_ACCESS_LOG:-1}" = 1 ] && echo --access-logfile -) --log-level "$LOG_LEVEL"
fi
[ "${WEB_SERVER:-granian}" = granian ] || { echo "WEB_SERVER must be granian or gunicorn" >&2; exit 2; }

access=()  # WEB_ACCESS_LOG=0 turns the per-request line off (gunicorn's too)
if [ "${WEB_ACCESS_LOG:-1}" = 1 ]; then
  access=(--access-log --access-log-fmt '%(addr)s "%(method)s %(path)s %(protocol)s" %(status)d %(dt_ms).3f ms')
fi
child=""
stopping=""
stop() {
  stopping=1
  [ -n "$child" ] && kill -TERM "$child" 2>/dev/null
}
trap stop TERM INT

while :; do
  granian --interface wsgi --host "$HOST" --port "$PORT" --workers "$WORKERS" \
    --blocking-threads "$THREADS" --no-ws --respawn-failed-workers --respawn-interval 1 \
    --workers-kill-timeout "${WEB_GRACEFUL_TIMEOUT:-10}" --log-level "$LOG_LEVEL" \
    "${access[@]}" \
    monetize.wsgi:application &
  child=$!
  wait "$child"
  status=$?
  while kill -0 "$child" 2>/dev/null; do wait "$child"; status=$?; done  # a trapped signal ends `wait` early
  [ -n "$stopping" ] && exit 0
  echo "web: granian exited ($status); starting it again" >&2
  sleep 1
done
