# syntax=docker/dockerfile:1
# One image for the operator and the storage service's head and server roles:
#   operator: the default command
#   head:     args ["dist/src/dataplane/main.js", "head"]
#   server:   args ["dist/src/dataplane/main.js", "server"]
# test/integration/image.test.ts runs the image under runc.

# The base: Node.js 24 on Debian. `npm run image` (scripts/image/build.sh) builds without a Docker
# engine or a registry: it makes this base locally and passes it in with --build-arg BASE_IMAGE.
ARG BASE_IMAGE=node:24-slim

# Build: install everything, compile src/ to dist/ (tsc -p tsconfig.build.json), then bundle the
# data plane into dist/dataplane/ (scripts/bundle-dataplane.ts), which its entry loads.
FROM ${BASE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Behind a TLS-inspecting proxy, the build is handed its CA as the secret npm-ca, and told so:
# --secret id=npm-ca,src=<bundle> --build-arg NODE_EXTRA_CA_CERTS=/run/secrets/npm-ca
ARG NODE_EXTRA_CA_CERTS
# No install scripts: the only one is the node devDependency's download of Node.js, which the base has.
RUN --mount=type=cache,target=/root/.npm --mount=type=secret,id=npm-ca npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/bundle-dataplane.ts ./scripts/
COPY src ./src
RUN npm run build

# Runtime: production dependencies and the compiled JavaScript only.
FROM ${BASE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
ARG NODE_EXTRA_CA_CERTS
RUN --mount=type=cache,target=/root/.npm --mount=type=secret,id=npm-ca npm ci --omit=dev --no-audit --no-fund
COPY --from=build /app/dist ./dist
# Node's module compile cache for the data plane (head and server), made here so that a new head
# pod starts from V8's cached code rather than compiling every module (docs/BENCHMARKS.md, head
# start). Node names the cache's folder by user, so the image's user makes it; then it is handed
# to root and only read at run time.
ENV NODE_COMPILE_CACHE=/app/.node-compile-cache
RUN install -d -o 65532 -g 65532 "$NODE_COMPILE_CACHE"
USER 65532:65532
RUN node dist/src/dataplane/main.js --help >/dev/null && \
  node --input-type=module -e 'import { readdirSync } from "node:fs"; \
    for (const f of readdirSync("/app/dist/dataplane")) await import(`/app/dist/dataplane/${f}`)'
USER 0:0
RUN chown -R 0:0 "$NODE_COMPILE_CACHE" && chmod -R a=rX "$NODE_COMPILE_CACHE"
# Files stay root-owned and read-only to the process: the root filesystem can be mounted
# read-only; the server role writes only to its volume, Node only to /tmp.
USER 65532:65532
ENTRYPOINT ["node"]
CMD ["dist/src/operator/main.js"]
