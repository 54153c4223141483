# Local stand-in for node:24-bookworm-slim, built when no registry is reachable.
# Context: a directory holding the project's Node 24 binary as ./node.
ARG DEBIAN_IMAGE=dockside/debian:bookworm
FROM ${DEBIAN_IMAGE}
COPY node /usr/local/bin/node
RUN groupadd --gid 1000 node \
 && useradd --uid 1000 --gid node --shell /bin/sh --create-home node \
 && node --version
CMD ["node"]
