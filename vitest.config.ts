import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Integration tests bind many 127.0.0.x addresses; a few files at once keeps 2 cores busy without starving timers.
    maxWorkers: 3,
  },
});
