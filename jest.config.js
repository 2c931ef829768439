/** Three projects: unit (no I/O, fast), integration (real local stack: Azurite, anvil, HTTPS stand-ins) and chaos. */
const tsJest = ['ts-jest', { tsconfig: 'tsconfig.json' }];
const common = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': tsJest },
  moduleFileExtensions: ['ts', 'js', 'json'],
};

module.exports = {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      slowTestThreshold: 30,
    },
    // Faults under load against the whole local consortium (test/chaos/chaos.test.ts; CHAOS_MODE=full: npm run chaos).
    { ...common, displayName: 'chaos', testMatch: ['<rootDir>/test/chaos/**/*.test.ts'], slowTestThreshold: 120 },
  ],
  // A global option (projects cannot set it): integration tests start real processes and wait for blocks.
  testTimeout: 120000,
  // Integration and chaos suites mostly wait (blocks, timers): two at once on a 2-core machine cut npm test from
  // ~8 to ~6 minutes (measured), and each starts its own stack on free ports.
  maxWorkers: 2,
};
