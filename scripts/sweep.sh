#!/usr/bin/env bash
# Removes what test runs left behind (a killed run cannot clean up after itself):
# containers and networks labelled dockside.test, and compose projects named dockside-test-*.
# Never touches the lab (project "dockside") or anything else.
set -uo pipefail
docker info >/dev/null 2>&1 || exit 0
projects=$(docker ps -a --format '{{.Label "com.docker.compose.project"}}' | grep '^dockside-test-' | sort -u)
for p in $projects; do
  docker ps -aq --filter "label=com.docker.compose.project=$p" | xargs -r docker rm -f -v >/dev/null
  docker network ls -q --filter "label=com.docker.compose.project=$p" | xargs -r docker network rm >/dev/null
  docker volume ls -q --filter "label=com.docker.compose.project=$p" | xargs -r docker volume rm >/dev/null
done
c=$(docker ps -aq --filter label=dockside.test)
[[ -n "$c" ]] && echo "sweep: removing $(echo "$c" | wc -l) leftover test container(s)" && echo "$c" | xargs docker rm -f -v >/dev/null
n=$(docker network ls -q --filter label=dockside.test)
[[ -n "$n" ]] && echo "$n" | xargs docker network rm >/dev/null 2>&1
# The cluster tests' and benchmarks' Docker hosts keep their engines on named volumes
# (dockside-cluster-test-*, dockside-cluster-bench-*; never the cluster lab's own).
v=$(docker volume ls -q | grep -E '^dockside-cluster-(test|bench)' || true)
[[ -n "$v" ]] && echo "$v" | xargs docker volume rm -f >/dev/null 2>&1
exit 0
