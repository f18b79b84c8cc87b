# syntax=docker/dockerfile:1

# Build a static binary.
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false \
    -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" -o /out/attrcache ./cmd/attrcache

# Run it as an unprivileged user. Alpine's busybox wget serves the health check.
FROM alpine:3.22
RUN addgroup -S attrcache && adduser -S -G attrcache -H -h /nonexistent attrcache
COPY --from=build /out/attrcache /usr/local/bin/attrcache
COPY configs/attrcache.yaml /etc/attrcache/attrcache.yaml
ENV ATTRCACHE_CONFIG=/etc/attrcache/attrcache.yaml \
    ATTRCACHE_HTTP_ADDR=0.0.0.0:17010
USER attrcache:attrcache
EXPOSE 17010
ENTRYPOINT ["attrcache"]
CMD ["serve"]
