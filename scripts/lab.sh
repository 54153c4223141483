#!/usr/bin/env bash
# The lab command (npm run lab [up|down|status|scale svc=N ...]; npm run lab -- cluster [same]).
# `up` installs what is missing (bootstrap), builds bundles and images, then starts the lab.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/ensure-deps.sh
case "${1:-up}" in
  up)
    bash scripts/bootstrap.sh
    node scripts/images.ts
    ;;
  cluster)
    if [ "${2:-up}" = up ]; then
      bash scripts/bootstrap.sh
      node scripts/images.ts
    else
      docker info >/dev/null 2>&1 || bash scripts/bootstrap.sh
    fi
    ;;
  scale | status | down | urls) docker info >/dev/null 2>&1 || bash scripts/bootstrap.sh ;;
esac
exec node scripts/lab.ts "$@"
