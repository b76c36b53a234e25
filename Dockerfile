# syntax=docker/dockerfile:1
# One image recipe for the three services. Build from the repository root, naming the service and
# its default port (the CI workflow passes the same pairs):
#   docker build --build-arg SERVICE=user-service        --build-arg PORT=5000 -t meeting-rooms-user-service .
#   docker build --build-arg SERVICE=room-service        --build-arg PORT=5001 -t meeting-rooms-room-service .
#   docker build --build-arg SERVICE=reservation-service --build-arg PORT=5002 -t meeting-rooms-reservation-service .
# The builder stage sees only Makefile, mk/, common/, tools/ and $SERVICE/ (the other services'
# sources are not needed; tests/offline/test_docker.py builds such a scratch copy to prove it).
# SERVICE and PORT are declared after the package installs, so all three images share those layers.

FROM debian:bookworm AS build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential pkg-config xxd \
      libcivetweb-dev libpq-dev librdkafka-dev libjansson-dev libcurl4-openssl-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
ARG SERVICE
ARG PORT
# Without the build arguments the image would be nameless and listen nowhere: stop here.
RUN case "$SERVICE" in ?*-service) ;; *) echo "--build-arg SERVICE=<name>-service is required" >&2; exit 1;; esac \
 && case "$PORT" in ''|*[!0-9]*) echo "--build-arg PORT=<number> is required" >&2; exit 1;; esac
WORKDIR /src
COPY Makefile ./
COPY mk ./mk
COPY common ./common
COPY tools ./tools
COPY ${SERVICE} ./${SERVICE}
RUN make -j"$(nproc)" "build/bin/${SERVICE}"

FROM debian:bookworm-slim
ARG DEBIAN_FRONTEND=noninteractive
# Only the shared libraries the binary links (libcivetweb.so.1, libpq.so.5, librdkafka.so.1,
# libjansson.so.4, libcurl.so.4, libcrypto.so.3 and what those pull in), CA roots for HTTPS to
# Google and the time-zone database that rooms' time_zone needs (/usr/share/zoneinfo).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libcivetweb1 libpq5 librdkafka1 libjansson4 libcurl4 libssl3 ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin app
ARG SERVICE
ARG PORT
# The binary goes to one fixed path in every image: the exec-form ENTRYPOINT below is not
# expanded, so it cannot name ${SERVICE}.
COPY --from=build /src/build/bin/${SERVICE} /usr/local/bin/service
USER 10001:10001
ENV PORT=${PORT}
EXPOSE ${PORT}
# Health check without curl: the image has no HTTP client and adding curl (plus its CLI deps)
# only for this would grow the attack surface. bash (Essential in Debian, so in -slim) opens
# a TCP connection through /dev/tcp to $PORT (set above, and followed when it is changed at run
# time), sends GET /live and requires a "200" status line. Kubernetes ignores HEALTHCHECK and
# uses the chart's probes on /live and /ready instead.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${PORT} && printf 'GET /live HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && read -r _ status _ <&3 && [ \"$status\" = 200 ]"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/service"]
