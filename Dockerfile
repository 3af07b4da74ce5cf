# The vigil command (audit, replay, policy check, approvals) in a small image, for
# docker-compose.yml. vigil.wasm itself is built on the host by scripts/build.
FROM rust:1.87-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p vigil-cli

FROM debian:bookworm-slim
COPY --from=build /src/target/release/vigil /usr/local/bin/vigil
ENTRYPOINT []
