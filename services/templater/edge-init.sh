#!/bin/sh
# The edge's supervisor, run by tini (PID 1): starts the templater, and starts it again when it
# dies while nginx (its child, reparented to tini) still runs, so a templater crash never takes
# nginx down; the new templater adopts the running nginx. When nginx itself is gone, or a stop
# was asked for, this exits with the templater's status (Docker's restart policy takes over).
pidfile=/tmp/dockside-nginx.pid
stopping=""
child=""
forward() {
  stopping=1
  [ -n "$child" ] && kill -s "$1" "$child" 2>/dev/null
}
trap 'forward QUIT' QUIT
trap 'forward TERM' TERM
trap 'forward INT' INT
nginx_alive() {
  [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}
while :; do
  # Memory: young generation kept small, two malloc arenas, allocations of 16 KiB and more
  # mmapped (returned to the system when freed: 78 → 71 MiB at start), no source maps parsed at
  # start (the registrator's flags less --lite-mode, which slowed the 1,000 × 10 push;
  # bench/README.md).
  # Maglev off and Sparkplug on the main thread: Node 24 can deadlock in exit when a background
  # compile waits for a GC only the main thread can run (nodejs/node#54918); the edge with a bad
  # TLS setting hung after its error line in 5 of 20 starts, 0 of 60 with Turbofan on the main
  # thread too, 0 of 30 with these two flags only. Turbofan stays in the background: on the
  # main thread its compiles stalled single changes (one for 52 ms in patchService, in a CPU
  # profile); 1,000 × 10's change → live went from p99 47-54, max 87-170 ms (2 runs) to p99
  # 25-50, max 34-97 ms (4 runs) with it in the background (bench/README.md).
  # Turbofan after 10,000 calls of a function instead of V8's 3,000: compiling the templates at
  # start called Handlebars' code generator often enough to optimise it, and the first Turbofan
  # compile maps ~6.5 MiB (RSS at start 65.3 → 58.8 MiB); the per-change work still reaches
  # Turbofan under load, and 1,000 × 10's change → live did not measurably change
  # (bench/README.md, "Templater RSS: what Node loads at start").
  MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=16384 node --max-semi-space-size=1 --optimize-for-size --no-maglev --no-concurrent-sparkplug --invocation-count-for-turbofan=10000 /app/main.mjs "$@" &
  child=$!
  code=0
  # `wait` returns early (status > 128) when a trapped signal arrives: wait until the child is gone.
  while :; do
    wait "$child"
    code=$?
    kill -0 "$child" 2>/dev/null || break
  done
  child=""
  if [ -n "$stopping" ] || [ "$code" -eq 0 ] || [ "$code" -eq 2 ] || ! nginx_alive; then
    exit "$code"
  fi
  printf '{"ts":"%s","level":"warn","service":"edge-init","msg":"templater exited while nginx runs; starting it again","status":%s}\n' \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$code" >&2
  sleep 0.2
done
