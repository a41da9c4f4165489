# The gateway as a container image. Not built on the machine this was written on (no Docker engine
# there): the README's "Deploy" section says what was checked instead.
#
#   docker build -t telemetry-gateway .
#   docker run --init -p 8080:8080 -p 1883:1883 -e GATEWAY_FLEET_KEY=… -v gw-data:/data telemetry-gateway
#
# Debian bookworm (glibc 2.36): the uWebSockets.js build the gateway uses needs glibc and Node 20;
# on Alpine (musl) or another Node it falls back to a slow shim and the gateway refuses to start.

FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY devices devices
COPY gateway gateway
COPY simulator simulator
COPY dashboard dashboard
RUN npm run build

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# Runtime dependencies only, exactly as locked. Install scripts are skipped: the two that exist
# (bufferutil, utf-8-validate) only build optional speed-ups for the ws fallback the gateway never uses.
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts && npm cache clean --force
COPY --from=build /src/dist ./dist
COPY --from=build /src/dashboard/dist ./dashboard/dist
COPY bin ./bin
COPY devices/PROTOCOL.md ./devices/PROTOCOL.md
RUN mkdir /data && chown node:node /data
USER node
ENV GATEWAY_DATA_DIR=/data \
    GATEWAY_LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 8080 1883
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.GATEWAY_PORT || 8080) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "bin/gateway.js"]
