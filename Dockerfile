# syntax=docker/dockerfile:1
# connectd container image: a Kafka Connect-compatible worker written in Rust.
#
#   docker build -t connectd .
#   docker run --rm -p 8083:8083 -v "$PWD/worker.properties:/etc/connectd/worker.properties:ro" connectd
#
# Builder: the rdkafka crate compiles a bundled, statically linked librdkafka
# (needs a C/C++ toolchain, make, perl, zlib headers; all in rust:1-bookworm)
# plus cmake in case the cmake-build feature is switched on. No libclang: the
# crate ships pre-generated bindings.

FROM rust:1-bookworm AS builder
# DL3008: Debian package versions are not pinned on purpose: pins to a point
# release break as soon as the Debian archive moves on; the base image tag pins
# the distribution.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY . .
# Cache mounts keep the crate registry and the target dir between builds;
# the binary is copied out because the cache is not part of the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/build/target \
    cargo build --release --locked --bin connectd \
 && install -m 0755 target/release/connectd /usr/local/bin/connectd

FROM debian:bookworm-slim
# curl: used by HEALTHCHECK. ca-certificates: TLS to brokers/registries.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 connectd \
 && useradd --system --uid 10001 --gid connectd --home-dir /var/lib/connectd --create-home --shell /usr/sbin/nologin connectd \
 && install -d -o connectd -g connectd /etc/connectd
COPY --from=builder /usr/local/bin/connectd /usr/local/bin/connectd
# Numeric uid (= user "connectd") so runAsNonRoot checks can verify it.
USER 10001:10001
WORKDIR /var/lib/connectd
EXPOSE 8083
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["sh", "-c", "curl -fsS -o /dev/null http://127.0.0.1:8083/health || exit 1"]
ENTRYPOINT ["connectd"]
CMD ["distributed", "/etc/connectd/worker.properties"]
