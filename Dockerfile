# syntax=docker/dockerfile:1
# The hourglass controller image. Node.js 24 runs the TypeScript sources directly (type stripping),
# so there is no build step: the image holds src/, package.json and the production node_modules.
#   docker build -t ghcr.io/hourglass-dev/hourglass:0.1.0 .
# Pin both base images by digest in release builds.

# Production dependencies only, installed exactly from the lockfile, with no install scripts.
# Debian 12 (glibc) like the runtime image, so a future native dependency still loads.
FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

# Runtime: Node.js 24 and glibc only (no shell, no package manager), running as the nonroot user.
FROM gcr.io/distroless/nodejs24-debian12:nonroot
WORKDIR /app
ENV NODE_ENV=production
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY src ./src
# Numeric, so that Kubernetes can verify runAsNonRoot. Nothing is written to the image's
# filesystem at runtime: the chart mounts it read-only.
USER 65532:65532
# 8443: webhook, OIDC discovery, JWKS, /introspect (TLS); 8080: /metrics, /healthz, /readyz.
EXPOSE 8443 8080
# The entrypoint is node: this runs `node --optimize-for-size src/main.ts` (V8 grows the heap
# less eagerly: RSS stays near the live set; see README, Benchmarks).
ENTRYPOINT ["/nodejs/bin/node"]
CMD ["--optimize-for-size", "src/main.ts"]
