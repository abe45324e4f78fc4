# syntax=docker/dockerfile:1

# Build: compile the TypeScript and bundle the web console (/ui) with the dev dependencies.
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json moleculer.config.ts ./
COPY services ./services
COPY mixins ./mixins
COPY tools ./tools
COPY lib ./lib
COPY types ./types
COPY scripts/healthcheck.ts ./scripts/
COPY ui ./ui
RUN npm run build

# Runtime: production dependencies and the compiled JavaScript only, as the unprivileged `node` user.
FROM node:22-bookworm-slim AS runtime
ENV NODE_ENV=production \
    LOG_FORMAT=json \
    SERVICEDIR=dist/services \
    PORT=3000
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
USER node
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 CMD ["node", "dist/scripts/healthcheck.js"]
# moleculer-runner is PID 1 and stops the broker gracefully on SIGTERM (tasks in hand finish first).
STOPSIGNAL SIGTERM
CMD ["node", "node_modules/moleculer/bin/moleculer-runner.js", "--config", "dist/moleculer.config.js"]
