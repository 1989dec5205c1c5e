# syntax=docker/dockerfile:1
# Build: compile TypeScript with the dev dependencies, then keep production dependencies only.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Install scripts are not needed: ssh2's optional native speed-up falls back to pure JS.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY lab ./lab
RUN npm run build && npm prune --omit=dev --ignore-scripts

# Run: Node 20 slim, no compiler, no dev dependencies, not root.
FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build --chown=root:root /app/package.json ./package.json
COPY --from=build --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist ./dist
# The CLI's STATE_DIR when it is run in this image; the bot keeps its state in Redis.
RUN mkdir -p /app/state && chown node:node /app/state
USER node
ENV STATE_DIR=/app/state PORT=3000
EXPOSE 3000
# ROLE=bot|worker|all picks what this container runs (default all).
CMD ["node", "dist/src/main.js"]
