# Local stand-in for haproxy: HAProxy from Debian bookworm (GPL-2.0), for the lab's Docker
# socket allow-list proxy. Runs as the package's unprivileged user; the configuration is
# mounted at the upstream image's path, so one compose file serves both.
ARG DEBIAN_IMAGE=dockside/debian:bookworm
FROM ${DEBIAN_IMAGE}
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends haproxy \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /usr/local/etc/haproxy \
 && haproxy -v
USER haproxy
STOPSIGNAL SIGUSR1
CMD ["haproxy", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]
