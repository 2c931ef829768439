/** Two projects: unit (no I/O, fast) and integration (real local stack: Azurite, anvil, HTTPS stand-ins). */
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
  ],
  // A global option (projects cannot set it): integration tests start real processes and wait for blocks.
  testTimeout: 120000,
};
