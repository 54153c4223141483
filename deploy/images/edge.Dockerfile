# The edge's base: nginx >= 1.27.4 (keepalive_min_timeout) with its Lua module (dynamic
# upstreams: balancer_by_lua, lua_shared_dict) and tini as PID 1, all Debian packages.
# No official nginx image carries both nginx >= 1.27.4 and Lua; trixie has nginx 1.26.3 and
# lua 0.10.28, so nginx and its Lua module come from sid (pinned at priority 100, so nothing
# else is taken from it). DEBIAN_IMAGE: upstream `debian:trixie` where a registry answers, the
# local debootstrap `dockside/debian:trixie` otherwise.
# Versions are pinned; scripts/images.ts tags the image with a hash of this file.
ARG DEBIAN_IMAGE=debian:trixie
FROM ${DEBIAN_IMAGE}
ARG NGINX_VERSION=1.30.6-2
ARG LUA_MODULE_VERSION=1:0.10.29-3+b1
ARG RESTY_CORE_VERSION=0.1.32-3
RUN set -e; \
    if [ -s /etc/apt/sources.list ]; then \
      sed -n -E 's/^(deb .*) trixie( .*)$/\1 sid\2/p' /etc/apt/sources.list > /etc/apt/sources.list.d/sid.list; \
    else \
      sed -E 's/^Suites:.*$/Suites: sid/' /etc/apt/sources.list.d/debian.sources | awk 'BEGIN{RS="";ORS="\n\n"} NR==1' > /etc/apt/sources.list.d/sid.sources; \
    fi; \
    ls /etc/apt/sources.list.d/ | grep -q sid; \
    printf 'Package: *\nPin: release n=sid\nPin-Priority: 100\n' > /etc/apt/preferences.d/sid; \
    apt-get -o Acquire::Check-Valid-Until=false update -q; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -t sid \
      "nginx=${NGINX_VERSION}" "libnginx-mod-http-lua=${LUA_MODULE_VERSION}" "lua-resty-core=${RESTY_CORE_VERSION}"; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends tini; \
    apt-get clean; rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/*; \
    ln -sf /dev/stdout /var/log/nginx/access.log; ln -sf /dev/stderr /var/log/nginx/error.log; \
    nginx -v; tini --version; ls /etc/nginx/modules-enabled/
STOPSIGNAL SIGQUIT
EXPOSE 80
CMD ["nginx", "-g", "daemon off;"]
