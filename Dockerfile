# syntax=docker/dockerfile:1

# The build stage: a static binary. The module and build caches persist across builds (BuildKit
# cache mounts); go.mod and go.sum are copied first so that the download layer survives source
# changes. VERSION and COMMIT are stamped in as the Makefile does (`attrcache --version`):
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) \
#     --build-arg COMMIT=$(git rev-parse HEAD) .
FROM golang:1.26.8-alpine AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -buildvcs=false \
    -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
    -o /out/attrcache ./cmd/attrcache

# The final stage: the binary and its configuration file, run as an unprivileged user. Alpine's
# busybox wget serves the health check.
FROM alpine:3.22
RUN addgroup -S attrcache && adduser -S -G attrcache -H -h /nonexistent attrcache
COPY --from=build /out/attrcache /usr/local/bin/attrcache
COPY configs/attrcache.yaml /etc/attrcache/attrcache.yaml
ENV ATTRCACHE_CONFIG=/etc/attrcache/attrcache.yaml \
    ATTRCACHE_HTTP_ADDR=0.0.0.0:17010
USER attrcache:attrcache
EXPOSE 17010
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:17010/readyz"]
ENTRYPOINT ["attrcache"]
CMD ["serve"]
