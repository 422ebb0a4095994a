# syntax=docker/dockerfile:1
#
# The smsauth image: one image for `smsauth controller` and `smsauth sidecar` (docs/install.md).
#
#   docker build -t smsauth:0.1.0 .
#   docker run --rm smsauth:0.1.0 --help
#
# Stages: `build` (every dependency, then tsc to dist/), `prod-deps` (production dependencies only;
# none has an install script: better-sqlite3 ships its prebuilt binaries inside its package), and the
# runtime image, which copies dist/ and the production node_modules and never sees the TypeScript
# sources, the dev dependencies or a compiler.
# Node.js 24 is the maintained LTS smsauth runs on (package.json "engines"). Pin NODE_IMAGE by digest
# in your own builds (node:24-bookworm-slim@sha256:...).
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# The image's Node.js runs the build: no dependency needs an install script here (the `node` dev
# dependency, which brings Node.js 24 to checkouts on older machines, has nothing to do).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY controller ./controller
RUN npm run build

FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: no production dependency needs an install script (a test keeps it so).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

FROM ${NODE_IMAGE} AS runtime
LABEL org.opencontainers.image.title="smsauth" \
      org.opencontainers.image.description="SMS authentication for identity stores, managed as code: controller and verification sidecar" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV NODE_ENV=production
# No package manager at runtime: nothing installs anything in this image.
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
           /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
 && groupadd --system --gid 10001 smsauth \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin smsauth
WORKDIR /app
COPY --from=prod-deps /src/node_modules ./node_modules
# package.json: the version (`smsauth version`) and, beside schemas/, how the CLI finds its files.
COPY package.json ./
COPY bin ./bin
COPY --from=build /src/dist ./dist
COPY schemas ./schemas
# The sidecar validates requests against the OpenAPI document.
COPY docs/openapi.yaml ./docs/openapi.yaml
COPY charts/smsauth/files/crds ./charts/smsauth/files/crds
# Numeric, so that the kubelet can check runAsNonRoot; the chart runs pods as this user.
USER 10001:10001
# Controller metrics and health probes; the sidecar's API (on 127.0.0.1 unless --host says otherwise) and its probes;
# the admission webhook (HTTPS).
EXPOSE 8080 8081 8787 8788 9443
ENTRYPOINT ["node", "bin/smsauth.js"]
CMD ["--help"]
