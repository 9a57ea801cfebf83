# Builds the tongban binary into a small image. Used by docker-compose.yml.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /tongban ./cmd/tongban

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /tongban /usr/local/bin/tongban
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/tongban"]
CMD ["serve", "--addr", "0.0.0.0:8080", "--data", "/data"]
