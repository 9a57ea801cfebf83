# Builds the tongban binary into a small image. Used by docker-compose.yml.
FROM golang:1.26 AS build
# Where proxy.golang.org cannot be reached, build with a mirror:
#   docker compose build --build-arg GOPROXY=https://goproxy.cn,direct
ARG GOPROXY
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
# .dockerignore keeps ./data, keys, tokens and .git out of this copy.
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /tongban ./cmd/tongban
# The data directory, owned by the runtime user (distroless nonroot,
# 65532). A named volume mounted at /data starts as a copy of it, owner
# included, so the gateway can write its ledger there.
RUN mkdir -p /rootfs/data && chmod 0700 /rootfs/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /tongban /usr/local/bin/tongban
COPY --from=build --chown=65532:65532 /rootfs/data /data
USER 65532:65532
# Declared after /data is created and owned: later changes to a volume
# path would be discarded.
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/tongban"]
CMD ["serve", "--addr", "0.0.0.0:8080", "--data", "/data"]
