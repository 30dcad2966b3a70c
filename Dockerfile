# syntax=docker/dockerfile:1
# Berth's image: the web UI built with Node, the binary with the toolchain of
# rust-toolchain.toml (--locked: Cargo.lock as checked in), and a minimal
# runtime that holds the binary alone and runs it as a non-root user.
#
#   docker build -t berth .                 # the runtime image (distroless, no shell)
#   docker build --target cli -t berth-cli .  # the same binary with a shell, for CI jobs
#
# Base images are pinned by version; pin them by digest too
# (name:tag@sha256:...) where the registry's digests are at hand.

FROM node:20.20.2-bookworm-slim AS web
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY web/ ./
RUN npx --no-install vite build --logLevel warn --outDir dist --emptyOutDir

FROM rust:1.95.0-slim-bookworm AS build
WORKDIR /src
COPY rust-toolchain.toml Cargo.toml Cargo.lock ./
COPY crates/ crates/
# berth-web embeds web/dist at build time.
COPY --from=web /src/web/dist web/dist
# Sentry's release carries the commit (`berth@<version>+<sha>`).
ARG BERTH_GIT_SHA=""
ENV BERTH_GIT_SHA=${BERTH_GIT_SHA}
RUN cargo build --release --locked -p berth \
 && install -D -m 0755 target/release/berth /out/berth

# The CLI for pipelines (GitLab's job scripts need a shell): berth and the CA roots.
FROM debian:bookworm-slim AS cli
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/berth /usr/local/bin/berth
USER 65532:65532
WORKDIR /tmp
ENTRYPOINT []
CMD ["berth", "--help"]

# The runtime: glibc and libgcc (all the binary links), CA roots, user 65532.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
COPY --from=build /out/berth /usr/local/bin/berth
USER 65532:65532
WORKDIR /var/lib/berth
# The HTTP API and web UI; the environments' Kubernetes API (HTTPS).
EXPOSE 8080 8443
ENV BERTH_LISTEN=0.0.0.0:8080 BERTH_KUBE_LISTEN=0.0.0.0:8443
ENTRYPOINT ["/usr/local/bin/berth"]
CMD ["serve"]
