/** Unit and integration suites share one run; integration tests talk to the real Redis and NATS. */
module.exports = {
	testEnvironment: "node",
	roots: ["<rootDir>/test"],
	testMatch: ["**/*.test.ts"],
	transform: { "^.+\\.ts$": "ts-jest" },
	testTimeout: 30000,
	globalSetup: "<rootDir>/test/support/global-setup.ts",
	reporters: ["default", "<rootDir>/test/support/summary-reporter.js"]
};
