# Reaper's one image: reaper-controller, reaper-installer (the node agent) and the runtime
# binaries that the agent copies to the nodes, all static, in /usr/local/bin. `make image`
# builds the same image without Docker.
#
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) -t reaper:dev .

FROM golang:1.26 AS build
WORKDIR /src

# The module download is its own layer, so a change to the sources reuses it.
COPY go.mod go.sum ./
RUN go mod download

COPY . .
# VERSION is what the shim reports to containerd, as in the Makefile's build target.
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-X reaper.dev/reaper/shim.Version=${VERSION}" \
      -o /out/ ./cmd/...

# distroless static has no shell and no package manager, and its nonroot user 65532 runs the
# controller. The agent's pod sets runAsUser 0.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/reaper-controller"]
