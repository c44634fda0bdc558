# syntax=docker/dockerfile:1
# Build: a static, cgo-free binary (SQLite is modernc's pure-Go driver).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/soarkafka/soarkafka/app.version=${VERSION}" \
      -o /out/soarkafka ./cmd/soarkafka \
 && mkdir -p /out/data

# Run: distroless static (CA certificates, tzdata, no shell), as the nonroot user.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/soarkafka /usr/local/bin/soarkafka
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV SOARKAFKA_LISTEN=0.0.0.0:8080 \
    SOARKAFKA_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/soarkafka"]
CMD ["serve"]
