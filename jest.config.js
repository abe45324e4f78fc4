/** Unit and integration suites share one run; integration tests talk to the real Redis and NATS. */
module.exports = {
	testEnvironment: "node",
	roots: ["<rootDir>/test"],
	testMatch: ["**/*.test.ts"],
	transform: { "^.+\\.ts$": ["ts-jest", { isolatedModules: true }] },
	testTimeout: 30000,
	reporters: ["default", "<rootDir>/test/support/summary-reporter.js"]
};
