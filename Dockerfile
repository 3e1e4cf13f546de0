# vmnet-operator container: built from source, runs as a non-root user on a distroless base.
#   docker build -t vmnet-operator:dev .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin vmnet-operator \
 && install -D target/release/vmnet-operator /out/vmnet-operator

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/vmnet-operator /usr/local/bin/vmnet-operator
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/vmnet-operator"]
