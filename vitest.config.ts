import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Multi-process tests start their own servers on their own ports; keep files apart.
    fileParallelism: true,
    maxWorkers: 2,
    reporters: ['default', './test/summary-reporter.ts'],
    // Every test directory under one per run, removed at its end.
    globalSetup: ['./test/temp-root.ts'],
  },
});
