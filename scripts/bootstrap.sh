#!/usr/bin/env bash
# Bring a machine to the point where the project can build, test and run the lab:
# a Docker engine that answers, the Compose v2 CLI plugin, and Node 24 for the project.
# Idempotent: every step checks first and prints one line, "ok" (skipped) or "did".
# On a host where it cannot install (not Debian, not root) it prints what is missing and exits 1.
#   bash scripts/bootstrap.sh          what the lab needs
#   bash scripts/bootstrap.sh --test   and what the test suite needs besides (Debian's chromium,
#                                      for the status page test, driven by playwright-core)
set -euo pipefail
for_tests=false
[[ "${1:-}" == --test ]] && for_tests=true

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DOCKERD_LOG="${DOCKSIDE_DOCKERD_LOG:-/var/log/dockside-dockerd.log}"
NODE_MAJOR=24
actions=0
missing=()

say() { printf 'bootstrap: %-18s %s\n' "$1" "$2"; }
did() { actions=$((actions + 1)); say "$1" "$2"; }

can_install() {
  [[ "$(id -u)" == 0 ]] && [[ -r /etc/debian_version ]] && command -v apt-get >/dev/null
}

docker_answers() { timeout 10 docker info >/dev/null 2>&1; }

apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/tmp/dockside-apt.log 2>&1 || {
    DEBIAN_FRONTEND=noninteractive apt-get update -q >>/tmp/dockside-apt.log 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >>/tmp/dockside-apt.log 2>&1
  } || { echo "bootstrap: apt-get install $* failed; see /tmp/dockside-apt.log" >&2; exit 1; }
}

# --- Docker engine -----------------------------------------------------------
ensure_docker_cli() {
  if command -v docker >/dev/null; then say "docker cli" "ok ($(docker --version | cut -d, -f1))"; return; fi
  if ! can_install; then missing+=("docker CLI: install Docker (https://docs.docker.com/engine/install/)"); return; fi
  apt_install docker.io
  did "docker cli" "installed docker.io"
}

# A process that exists and is not a zombie (a daemon killed with -9 can linger as one, and
# `kill -0` and `pgrep` both still see it).
pid_alive() {
  local state
  state="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" || return 1
  [[ -n "$state" && "$state" != Z ]]
}
process_running() {
  local pid
  for pid in $(pgrep -x "$1"); do pid_alive "$pid" && return 0; done
  return 1
}

clear_stale_daemon_state() {
  # A daemon killed abruptly leaves its pid file and containerd's socket behind; either stops dockerd from starting.
  if [[ -f /var/run/docker.pid ]] && ! pid_alive "$(cat /var/run/docker.pid)"; then rm -f /var/run/docker.pid; fi
  if ! process_running containerd; then
    rm -f /run/containerd/containerd.sock /var/run/docker/containerd/containerd.pid /var/run/docker/containerd/containerd.sock
  fi
}

ensure_docker_daemon() {
  if docker_answers; then say "docker engine" "ok (server $(docker version -f '{{.Server.Version}}' 2>/dev/null))"; return; fi
  if ! can_install; then missing+=("a running Docker engine: start Docker Desktop or dockerd, or set DOCKER_HOST"); return; fi
  if ! command -v dockerd >/dev/null; then
    apt_install docker.io
    did "docker engine" "installed docker.io ($(dockerd --version | cut -d, -f1))"
  fi
  if ! process_running dockerd; then
    clear_stale_daemon_state
    nohup dockerd --storage-driver=overlay2 --exec-opt native.cgroupdriver=cgroupfs >>"$DOCKERD_LOG" 2>&1 &
  fi
  for _ in $(seq 1 120); do
    if [[ -S /var/run/docker.sock ]] && docker_answers; then
      did "docker engine" "started dockerd (log: $DOCKERD_LOG)"
      return
    fi
    if ! process_running dockerd; then
      echo "bootstrap: dockerd exited while starting; last lines of $DOCKERD_LOG:" >&2
      tail -n 20 "$DOCKERD_LOG" >&2 || true
      exit 1
    fi
    sleep 0.5
  done
  echo "bootstrap: dockerd did not answer within 60 s; last lines of $DOCKERD_LOG:" >&2
  tail -n 20 "$DOCKERD_LOG" >&2 || true
  exit 1
}

# --- Compose v2 ---------------------------------------------------------------
ensure_compose() {
  if docker compose version >/dev/null 2>&1; then say "compose v2" "ok ($(docker compose version --short 2>/dev/null))"; return; fi
  if ! can_install; then missing+=("the Docker Compose v2 plugin (https://docs.docker.com/compose/install/linux/)"); return; fi
  # bookworm only packages Compose v1; trixie's docker-compose is v2 and its binary needs only libc.
  # Download it with a private apt state so the system's apt setup is untouched.
  local tmp; tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' RETURN
  mkdir -p "$tmp/sources" "$tmp/lists/partial" "$tmp/cache/archives/partial" "$tmp/x"
  local src=/etc/apt/sources.list.d/debian.sources
  if [[ -f "$src" ]]; then
    awk 'BEGIN{RS="";ORS="\n\n"} NR==1{print; exit}' "$src" | sed -E 's/^Suites:.*/Suites: trixie/' >"$tmp/sources/trixie.sources"
  else
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' >"$tmp/sources/trixie.sources"
  fi
  local opts=(-o "Dir::Etc::SourceParts=$tmp/sources" -o "Dir::Etc::SourceList=/dev/null"
    -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache=$tmp/cache" -o Acquire::Check-Valid-Until=false -q)
  apt-get "${opts[@]}" update >"$tmp/apt.log" 2>&1 || { cat "$tmp/apt.log" >&2; exit 1; }
  (cd "$tmp" && apt-get "${opts[@]}" download docker-compose >>"$tmp/apt.log" 2>&1) || { cat "$tmp/apt.log" >&2; exit 1; }
  dpkg -x "$tmp"/docker-compose_*.deb "$tmp/x"
  install -D -m 0755 "$tmp/x/usr/libexec/docker/cli-plugins/docker-compose" /usr/local/lib/docker/cli-plugins/docker-compose
  docker compose version >/dev/null || { echo "bootstrap: installed compose plugin does not run" >&2; exit 1; }
  did "compose v2" "installed $(docker compose version --short) from Debian trixie to /usr/local/lib/docker/cli-plugins"
}

# --- Node 24 -------------------------------------------------------------------
node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

ensure_node() {
  local local_node="$ROOT/node_modules/.bin/node"
  if [[ -x "$local_node" ]] && (( $(node_major "$local_node") >= NODE_MAJOR )); then
    say "node $NODE_MAJOR" "ok (project: $("$local_node" --version))"; return
  fi
  if ! command -v npm >/dev/null; then
    missing+=("npm (any Node.js >= 18 with npm); the project installs its own Node $NODE_MAJOR"); return
  fi
  # The devDependency "node" (npm package) puts Node 24 at node_modules/.bin/node, first on PATH for npm scripts.
  (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error >/tmp/dockside-npm.log 2>&1) ||
    { tail -n 30 /tmp/dockside-npm.log >&2; echo "bootstrap: npm ci failed" >&2; exit 1; }
  if [[ ! -x "$local_node" ]] || (( $(node_major "$local_node") < NODE_MAJOR )); then
    echo "bootstrap: npm ci did not provide Node $NODE_MAJOR at node_modules/.bin/node; the \"node\" package's install script must be allowed (package.json allowScripts)" >&2
    exit 1
  fi
  did "node $NODE_MAJOR" "installed project dependencies, node $("$local_node" --version)"
}

# --- a browser for the page test ------------------------------------------------
ensure_chromium() {
  if [[ -x /usr/bin/chromium ]]; then say "chromium" "ok ($(/usr/bin/chromium --version 2>/dev/null | head -1))"; return; fi
  if ! can_install; then missing+=("chromium at /usr/bin/chromium (Debian: apt-get install chromium), for the status page test"); return; fi
  apt_install chromium
  did "chromium" "installed Debian's chromium ($(/usr/bin/chromium --version 2>/dev/null | head -1))"
}

if ! can_install; then
  reason="not root"; [[ -r /etc/debian_version ]] || reason="not a Debian host"
  say "host" "$reason: will only check, not install"
fi
ensure_docker_cli
command -v docker >/dev/null && ensure_docker_daemon
command -v docker >/dev/null && docker_answers && ensure_compose
ensure_node
if $for_tests; then ensure_chromium; fi

if (( ${#missing[@]} )); then
  echo "bootstrap: missing, and not installed here:" >&2
  for m in "${missing[@]}"; do echo "  - $m" >&2; done
  exit 1
fi
if (( actions == 0 )); then say "done" "nothing to do: everything was already in place"; else say "done" "$actions step(s) taken"; fi
