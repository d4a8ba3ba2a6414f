#!/usr/bin/env bash
# `make demo`: skyboard on embedded defaults (SQLite, filesystem broker) with a demo project.
# Starts the web server, one Celery worker listening on every queue, and beat; Ctrl-C stops all.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
PORT="${PORT:-8000}"
HOST="${HOST:-127.0.0.1}"
mkdir -p "${SKYBOARD_VAR_DIR:-var}/logs"
LOGS="${SKYBOARD_VAR_DIR:-var}/logs"

# Static files as production serves them: hashed names, long cache lifetimes, compressed
# copies (plotly.min.js is 4.8 MB, about 1.4 MB gzipped).
export SKYBOARD_STATIC_MANIFEST=1
$PY manage.py collectstatic --noinput -v 0
$PY manage.py migrate --noinput
$PY manage.py prepare_demo_model
$PY manage.py create_demo
DEMO_MODEL="$($PY -c 'import django, os; os.environ.setdefault("DJANGO_SETTINGS_MODULE", "skyboard.settings"); django.setup(); from django.conf import settings; print(settings.DEMO_MODEL_DIR)')"

pids=()
stop() {
  trap - INT TERM EXIT
  echo; echo "stopping skyboard…"
  # TERM to each leader (a warm shutdown: the worker finishes or hands back its task), then
  # KILL whatever is left of their process groups.
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 100); do
    alive=0; for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break; sleep 0.2
  done
  for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
}
trap stop INT TERM EXIT

start() {  # each in its own process group, so stop() takes its children too
  setsid "$@" &
  pids+=("$!")
}

# Without an OpenAI key, the reformat stage talks to a real OpenAI-compatible server on this
# machine: `transformers serve` with the demo model (small, so its rewrites are rough).
if [ -z "${OPENAI_API_KEY:-}" ]; then
  SERVE_PORT="${SERVE_PORT:-8011}"
  start env HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 .venv/bin/transformers serve --host 127.0.0.1 \
    --port "$SERVE_PORT" --device cpu "$DEMO_MODEL" > "$LOGS/transformers-serve.log" 2>&1
  export OPENAI_BASE_URL="http://127.0.0.1:$SERVE_PORT/v1" OPENAI_MODEL="$DEMO_MODEL"
  export OPENAI_API_KEY="local-demo-no-key"
  REFORMATTER="transformers serve on :$SERVE_PORT with the demo model (set OPENAI_API_KEY to use OpenAI)"
else
  REFORMATTER="${OPENAI_MODEL:-gpt-4o-mini} at ${OPENAI_BASE_URL:-https://api.openai.com/v1}"
fi

start $PY -m celery -A skyboard worker -Q cpu,gpu,api -c 2 -n "demo@%h" -l info > "$LOGS/worker.log" 2>&1
start $PY -m celery -A skyboard beat -l info -s "${SKYBOARD_VAR_DIR:-var}/celerybeat-schedule" \
  --pidfile= > "$LOGS/beat.log" 2>&1
start .venv/bin/gunicorn skyboard.wsgi -b "$HOST:$PORT" -w 2 --threads 4 --access-logfile "$LOGS/web.log" \
  --error-logfile "$LOGS/web.log"

cat <<MSG

  skyboard is up:   http://$HOST:$PORT/
  log in as:        demo / demo-skyboard   (an operator)
  admin:            admin / admin-skyboard (the admin role and Django admin at http://$HOST:$PORT/admin/)
  reformatting:     $REFORMATTER
  logs:             $LOGS/{web,worker,beat}.log
  Ctrl-C stops the web server, the worker and beat.

MSG
wait -n "${pids[@]}"
echo "a skyboard process exited; see $LOGS"
