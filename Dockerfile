# kafka-test-app container image.
#
#   docker build -t kafka-test-app .                  # compiles from source in a Rust builder stage
#   docker run --rm kafka-test-app produce -s broker:9092 -t my-topic
#
# The runtime image holds the binary (/usr/local/bin/kafka-test-app, debug info stripped) and what it
# links against (glibc, libgcc, OpenSSL 3, zlib) plus CA certificates; it runs as the non-root user
# 10001, serves /healthz, /readyz, /metrics and /report on :8080 and logs JSON lines to stderr.
#
# Build arguments:
#   BUILDER_IMAGE  the Rust builder stage's base       (default rust:1-bookworm)
#   RUNTIME_IMAGE  the runtime stage's base            (default debian:bookworm-slim)
#   PREBUILT       path, inside the build context, of an already-built Linux x86_64 binary
#                  (built on Debian bookworm or older glibc). When set the builder stage only copies
#                  it, so BUILDER_IMAGE can be any image with a shell (e.g. debian:bookworm-slim):
#                    cargo build --release --locked
#                    ctx=$(mktemp -d); cp target/release/kafka-test-app "$ctx"/
#                    docker build -f Dockerfile --build-arg PREBUILT=kafka-test-app \
#                        --build-arg BUILDER_IMAGE=debian:bookworm-slim -t kafka-test-app "$ctx"
# Works with BuildKit and with the legacy builder (which builds every stage: so there is a single
# builder stage whose work depends on PREBUILT, not a stage per way).
ARG BUILDER_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${BUILDER_IMAGE} AS builder
ARG PREBUILT=""
WORKDIR /src
COPY . .
RUN set -eu; \
    mkdir -p /out; \
    if [ -n "$PREBUILT" ]; then \
        cp "$PREBUILT" /out/kafka-test-app; \
    else \
        if ! command -v pkg-config >/dev/null || ! [ -e /usr/include/openssl/ssl.h ] || ! [ -e /usr/include/zlib.h ]; then \
            apt-get update; \
            apt-get install -y --no-install-recommends pkg-config libssl-dev zlib1g-dev make; \
            rm -rf /var/lib/apt/lists/*; \
        fi; \
        cargo build --release --locked; \
        cp target/release/kafka-test-app /out/kafka-test-app; \
    fi; \
    if command -v strip >/dev/null; then strip --strip-debug /out/kafka-test-app; fi; \
    chmod 0755 /out/kafka-test-app

FROM ${RUNTIME_IMAGE} AS runtime
# Debian's registry image lacks libssl3 and ca-certificates; the locally made base
# (deploy/make-base-images) has them, so this installs only what is missing.
RUN set -eu; \
    missing=""; \
    for p in libssl3 zlib1g ca-certificates; do \
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"; \
    done; \
    if [ -n "$missing" ]; then \
        apt-get update; \
        apt-get install -y --no-install-recommends $missing; \
        rm -rf /var/lib/apt/lists/*; \
    fi; \
    groupadd --system --gid 10001 kafka-test-app; \
    useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin kafka-test-app
COPY --from=builder /out/kafka-test-app /usr/local/bin/kafka-test-app
# Fails the build if a library the binary links against is missing from the runtime image.
RUN /usr/local/bin/kafka-test-app --version
USER 10001:10001
ENV KTA_HTTP_ADDR=0.0.0.0:8080 \
    KTA_LOG_FORMAT=json
EXPOSE 8080
# The producer and consumer print their final report and exit 0 on SIGTERM (flushing outstanding
# events for at most --flush-timeout, 10 s by default: keep the stop grace period above it).
STOPSIGNAL SIGTERM
LABEL org.opencontainers.image.title="kafka-test-app" \
      org.opencontainers.image.description="Produces JSON test events to Kafka and verifies them with a consumer" \
      org.opencontainers.image.licenses="Apache-2.0"
ENTRYPOINT ["/usr/local/bin/kafka-test-app"]
CMD ["--help"]
