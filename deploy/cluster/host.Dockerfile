# A "Docker host" for the cluster lab: its own Docker engine (Docker-in-Docker) from the local
# Debian base, with docker.io and iptables from Debian. See ENVIRONMENT.md, "Several Docker
# engines on one machine": run it with --cap-add ALL --cap-drop SYS_RESOURCE and seccomp/apparmor
# unconfined (--privileged fails on these VMs), and its data root on a volume.
ARG DEBIAN_IMAGE=dockside/debian:bookworm
FROM ${DEBIAN_IMAGE}
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker.io iptables ca-certificates procps \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
COPY host-entrypoint.sh /usr/local/bin/host-entrypoint.sh
VOLUME /var/lib/docker
ENTRYPOINT ["/bin/sh", "/usr/local/bin/host-entrypoint.sh"]
