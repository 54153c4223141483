# Local stand-in for hashicorp/consul: Consul from Debian bullseye (MPL-2.0).
ARG DEBIAN_IMAGE=dockside/debian:bookworm
FROM ${DEBIAN_IMAGE}
RUN sed -n -E 's/^(deb .*) bookworm( .*)$/\1 bullseye\2/p' /etc/apt/sources.list > /etc/apt/sources.list.d/bullseye.list \
 && test -s /etc/apt/sources.list.d/bullseye.list \
 && printf 'Package: *\nPin: release n=bullseye\nPin-Priority: 100\n' > /etc/apt/preferences.d/bullseye \
 && apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends consul \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && (id consul >/dev/null 2>&1 || useradd --system --home /consul consul) \
 && mkdir -p /consul/data /consul/config && chown -R consul /consul \
 && consul version
USER consul
EXPOSE 8500 8600/udp
# Same command line as the upstream image: `agent -dev -client 0.0.0.0` as the arguments.
ENTRYPOINT ["consul"]
CMD ["agent", "-dev", "-client", "0.0.0.0"]
