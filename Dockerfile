# Multi-stage build: compile with the Rust toolchain, run on a slim Debian as a non-root user.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY templates templates
COPY static static
COPY assets assets
# Declared in Cargo.toml, so the manifest needs them even though the image does not.
COPY benches benches
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/securify --shell /usr/sbin/nologin securify \
    && mkdir -p /var/lib/securify && chown securify:securify /var/lib/securify && chmod 700 /var/lib/securify
COPY --from=build /src/target/release/securify /usr/bin/securify
USER securify
ENV SECURIFY_DATA_DIR=/var/lib/securify SECURIFY_LISTEN=0.0.0.0:8443
VOLUME /var/lib/securify
EXPOSE 8443
HEALTHCHECK --interval=30s --timeout=5s CMD curl -skf https://127.0.0.1:8443/health || exit 1
ENTRYPOINT ["/usr/bin/securify"]
CMD ["serve"]
