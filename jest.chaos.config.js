/** `npm run chaos`: the fault-injection suite (test/chaos), against real NATS and Redis processes. */
module.exports = {
	testEnvironment: "node",
	roots: ["<rootDir>/test/chaos"],
	testMatch: ["**/*.chaos.ts"],
	transform: { "^.+\\.ts$": "ts-jest" },
	testTimeout: 240000,
	// As in jest.config.js: leaked connections (docs/development.md) must not keep the run alive.
	forceExit: true
};
