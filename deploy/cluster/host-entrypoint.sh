#!/bin/sh
# Starts this lab host's own dockerd. In a container that is not --privileged the cgroup v1
# hierarchies arrive read-only and cannot be remounted read-write (EBUSY), so each one is
# mounted afresh; the inner engine keeps its containers under its own cgroup parent.
set -eu
awk '$3 == "cgroup" { print $2, $4 }' /proc/mounts | while read -r point opts; do
  case "$opts" in ro,* | *,ro,* | ro) ;; *) continue ;; esac
  subsys=$(echo "$opts" | tr ',' '\n' | grep -v -x -E 'ro|rw|nosuid|nodev|noexec|relatime' | paste -sd, -)
  umount "$point" && mount -t cgroup -o "$subsys" cgroup "$point"
done
# A host killed with SIGKILL leaves these behind; the next start must not trip over them.
rm -f /var/run/docker.pid /var/run/docker/containerd/containerd.pid /run/docker/containerd/containerd.pid
exec dockerd --host unix:///var/run/docker.sock --storage-driver "${DOCKSIDE_HOST_STORAGE:-overlay2}" \
  --cgroup-parent "${DOCKSIDE_CGROUP_PARENT:-/dockside-lab-$(hostname)}" --log-level "${DOCKSIDE_HOST_LOG_LEVEL:-warn}" "$@"
