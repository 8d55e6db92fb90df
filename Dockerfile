# The evenire-server image: built from this checkout in a Rust image, run from a small
# Debian one as a non-root user, with the data directory as a volume.
#
#   docker build --build-arg EVENIRE_COMMIT="$(git rev-parse --short=12 HEAD)" -t evenire .
#   docker run -p 5243:5243 -v evenire-data:/var/lib/evenire \
#     -v "$PWD/tls:/etc/evenire:ro" \
#     -e EVENIRE_TLS_CERT=/etc/evenire/tls.crt -e EVENIRE_TLS_KEY=/etc/evenire/tls.key \
#     -e EVENIRE_AUTH_TOKENS=/etc/evenire/tokens.toml evenire
#
# Inside the container the server listens on all interfaces, so it refuses to start
# without TLS and credentials (docs/security.md) unless EVENIRE_INSECURE=true says to.
# No container engine runs where this is developed: scripts/check-deploy lints this
# file with hadolint in CI, and the build step is the README's release build.

FROM rust:1.95-bookworm AS build
# The commit, for --version: the build has no .git to read it from.
ARG EVENIRE_COMMIT=unknown
WORKDIR /src
# The workspace's manifests, sources and the contract; nothing else is needed to build
# the server (.dockerignore keeps target/, node_modules/ and the clients out).
COPY . .
RUN EVENIRE_COMMIT="$EVENIRE_COMMIT" cargo build --release --locked -p evenire-server \
    && cp target/release/evenire-server /usr/local/bin/evenire-server

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/evenire --create-home evenire
COPY --from=build /usr/local/bin/evenire-server /usr/local/bin/evenire-server
USER 10001:10001
ENV EVENIRE_LISTEN=0.0.0.0:5243 \
    EVENIRE_DATA_DIR=/var/lib/evenire
VOLUME ["/var/lib/evenire"]
EXPOSE 5243
# SIGTERM stops it cleanly: requests in flight get --shutdown-grace-secs (10), then the
# log is synced. Give the container's stop timeout more than that.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/evenire-server"]
