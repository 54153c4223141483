# Local stand-in for busybox: a static busybox, the tiny workload for tests and benchmarks.
ARG DEBIAN_IMAGE=dockside/debian:bookworm
FROM ${DEBIAN_IMAGE} AS src
RUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends busybox-static
FROM scratch
COPY --from=src /bin/busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
CMD ["sh"]
