import { defineConfig } from 'vitest/config';

/**
 * One runner for every tier. Integration and e2e tests start real servers on 127.0.0.1 (the sandbox) and use the real
 * keychain; `npm test` (scripts/test.sh) provides the D-Bus session and unlocked gnome-keyring they need.
 */
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'test/**/*.test.tsx'],
    exclude: ['node_modules/**', 'out/**', 'test/fixtures/**'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    teardownTimeout: 10_000,
    reporters: ['default'],
    environment: 'node',
  },
});
