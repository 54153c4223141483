#!/bin/bash
# A stand-in for the nginx master, for unit tests of the templater's NginxSupervisor: it keeps
# one child titled "nginx: worker process" (as nginx's workers are), and on SIGHUP starts a new
# one and, unless FAKE_NGINX_STUCK is set, ends the old one 50 ms later. QUIT/TERM end it with 0,
# FAKE_NGINX_EXIT_AFTER=<s> makes it exit 3 on its own, FAKE_NGINX_SLOW_START=<s> waits before it
# sets up its handlers (a signal then ends it, as one would a just-started nginx). Its arguments
# (-c, -e, -g) are ignored.
if [[ -n "${FAKE_NGINX_SLOW_START:-}" ]]; then sleep "$FAKE_NGINX_SLOW_START"; fi
trap 'kill $(jobs -p) 2>/dev/null; exit 0' QUIT TERM
trap 'kill $(jobs -p) 2>/dev/null; exit 3' USR1
worker() { (exec -a "nginx: worker process" sleep 300) & }
worker
cur=$!
on_hup() {
  local old=$cur
  worker
  cur=$!
  if [[ -z "${FAKE_NGINX_STUCK:-}" ]]; then (sleep 0.05; kill "$old") & fi
}
trap on_hup HUP
if [[ -n "${FAKE_NGINX_EXIT_AFTER:-}" ]]; then (sleep "$FAKE_NGINX_EXIT_AFTER"; kill -USR1 $$) & fi
while true; do wait; done
