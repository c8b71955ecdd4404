# cfmint's container image: a locked release build, then a small Debian
# runtime with OpenSSL's shared library, running as a non-root user.
#
#   podman build -t cfmint .            (docker build works the same)
#   podman run --read-only -p 127.0.0.1:8080:8080 \
#     -v ./cfmint.toml:/etc/cfmint/cfmint.toml:ro -v ./keys:/etc/cfmint/keys:ro cfmint
#
# The base images are build arguments, so builders without Docker Hub can
# point them elsewhere (scripts/container-test makes both locally).
ARG BUILDER_IMAGE=docker.io/library/rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=docker.io/library/debian:bookworm-slim

FROM ${BUILDER_IMAGE} AS build
# pkg-config and OpenSSL's headers, unless the builder image has them already.
# Versions are not pinned: they come with the base image's Debian release.
# hadolint ignore=DL3008
RUN if ! pkg-config --exists openssl 2>/dev/null; then \
      apt-get update \
      && apt-get install -y --no-install-recommends pkg-config libssl-dev \
      && rm -rf /var/lib/apt/lists/*; \
    fi
WORKDIR /src
# Dependencies first, in their own layer, so a source change rebuilds only cfmint.
COPY Cargo.toml Cargo.lock ./
COPY crates/cfmint-signer/Cargo.toml crates/cfmint-signer/
RUN mkdir -p src benches crates/cfmint-signer/src \
    && echo 'fn main() {}' > src/main.rs \
    && echo 'fn main() {}' > build.rs \
    && touch src/lib.rs crates/cfmint-signer/src/lib.rs \
    && for bench in signer playlist; do echo 'fn main() {}' > "benches/$bench.rs"; done \
    && cargo build --release --locked \
    && rm -rf src benches crates/cfmint-signer/src build.rs
COPY . .
RUN touch build.rs src/main.rs src/lib.rs crates/cfmint-signer/src/lib.rs \
    && cargo build --release --locked \
    && install -m 0755 target/release/cfmint /usr/local/bin/cfmint

FROM ${RUNTIME_IMAGE}
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# OpenSSL's shared library and CA certificates, unless the base has them.
# hadolint ignore=DL3008
RUN if ! ldconfig -p | grep -q 'libssl.so.3 '; then \
      apt-get update \
      && apt-get install -y --no-install-recommends libssl3 ca-certificates \
      && rm -rf /var/lib/apt/lists/*; \
    fi
COPY --from=build /usr/local/bin/cfmint /usr/local/bin/cfmint
# Mount the configuration and keys read-only under /etc/cfmint; the root
# filesystem can be read-only too (cfmint writes nothing).
USER 65532:65532
EXPOSE 8080 9090
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 \
  CMD ["cfmint", "healthcheck", "--url", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["cfmint"]
CMD ["serve", "--config", "/etc/cfmint/cfmint.toml"]
