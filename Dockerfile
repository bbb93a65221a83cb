# syntax=docker/dockerfile:1.7
# The ferry agent's image: `ferry operator` (the chart's Deployment) or any other ferry command.
#
#   docker build -t ghcr.io/ferry-dev/ferry:0.1.0 .
#
# Stages: build (npm ci, tsc) -> toolchain (the binaries a run needs, built from Go modules by
# `ferry toolchain install`, as on a workstation) -> prod (runtime npm dependencies) -> runtime
# (node, git, ssh, the app and the toolchain; non-root). The local control plane's binaries (etcd,
# kube-apiserver, kwok, ...) and the tests' registry are never built: they are for ferry's tests only.

ARG NODE_IMAGE=node:20-bookworm-slim
ARG GO_IMAGE=golang:1.26-bookworm

FROM ${GO_IMAGE} AS go

# --- build: the TypeScript app, compiled to dist/ (the CLI, the agent and the Pulumi program).
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
COPY tsconfig.json index.ts Pulumi.yaml ./
COPY bin ./bin
COPY components ./components
COPY src ./src
RUN npx tsc -p tsconfig.json

# --- toolchain: pulumi + pulumi-language-nodejs, pulumi-resource-kubernetes, helm and kubectl at
# ferry's pinned versions, built from toolchain/modules the way `ferry toolchain install` always does.
FROM build AS toolchain
COPY --from=go /usr/local/go /usr/local/go
ENV PATH=/usr/local/go/bin:$PATH \
    GOTOOLCHAIN=local \
    FERRY_TOOLCHAIN_DIR=/opt/ferry/toolchain
COPY toolchain/modules ./toolchain/modules
RUN --mount=type=cache,target=/root/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    node bin/ferry toolchain install --only pulumi pulumi-resource-kubernetes helm kubectl \
 && rm -rf /opt/ferry/toolchain/build /opt/ferry/toolchain/*.build-lock

# --- prod: the npm dependencies a run needs (no TypeScript, linters or test tools).
FROM build AS prod
RUN npm prune --omit=dev --no-audit --no-fund

# --- runtime
FROM ${NODE_IMAGE} AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends git openssh-client ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 65532 nonroot \
 && useradd --uid 65532 --gid 65532 --home-dir /home/nonroot --create-home --shell /usr/sbin/nologin nonroot \
 && mkdir -p /var/lib/ferry \
 && chown 65532:65532 /var/lib/ferry
WORKDIR /app
COPY --from=prod /app/package.json /app/Pulumi.yaml ./
COPY --from=prod /app/node_modules ./node_modules
COPY --from=prod /app/dist ./dist
COPY bin ./bin
COPY charts ./charts
COPY stacks ./stacks
# Same path as in the toolchain stage: pulumi-root/bin links to the binaries by absolute path.
COPY --from=toolchain /opt/ferry/toolchain /opt/ferry/toolchain
ENV NODE_ENV=production \
    FERRY_TOOLCHAIN_DIR=/opt/ferry/toolchain \
    FERRY_STATE_DIR=/var/lib/ferry \
    FERRY_LOG_FORMAT=json \
    HOME=/home/nonroot
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["node", "/app/bin/ferry"]
CMD ["operator"]
