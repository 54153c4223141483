# Local stand-in for the official nginx image. The edge needs nginx >= 1.27.4
# (keepalive_min_timeout); bookworm and trixie are older, Debian sid is not.
ARG DEBIAN_IMAGE=dockside/debian:trixie
FROM ${DEBIAN_IMAGE}
RUN sed -n -E 's/^(deb .*) trixie( .*)$/\1 sid\2/p' /etc/apt/sources.list > /etc/apt/sources.list.d/sid.list \
 && test -s /etc/apt/sources.list.d/sid.list \
 && printf 'Package: *\nPin: release n=sid\nPin-Priority: 100\n' > /etc/apt/preferences.d/sid \
 && apt-get -o Acquire::Check-Valid-Until=false update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -t sid nginx \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/* \
 && ln -sf /dev/stdout /var/log/nginx/access.log && ln -sf /dev/stderr /var/log/nginx/error.log \
 && nginx -v
STOPSIGNAL SIGQUIT
EXPOSE 80
CMD ["nginx", "-g", "daemon off;"]
