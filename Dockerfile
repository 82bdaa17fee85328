# syntax=docker/dockerfile:1
# One image for the operator and the storage service's head and server roles:
#   operator: the default command
#   head:     args ["dist/src/dataplane/main.js", "head"]
#   server:   args ["dist/src/dataplane/main.js", "server"]
# The RUN steps are the commands CI runs; test/unit/cli/dockerfile.test.ts keeps them so.

# Build: install everything, compile src/ to dist/ (tsc -p tsconfig.build.json).
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Runtime: production dependencies and the compiled JavaScript only.
FROM node:24-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --no-audit --no-fund
COPY --from=build /app/dist ./dist
# Files stay root-owned and read-only to the process: the root filesystem can be mounted
# read-only; the server role writes only to its volume, Node only to /tmp.
USER 65532:65532
ENTRYPOINT ["node"]
CMD ["dist/src/operator/main.js"]
