import { readFileSync } from "fs";
import { availableParallelism } from "os";
import { CONFIG_VARIABLES, ConfigError, configurationRows, loadConfig } from "../../lib/config";
import { CONFIG_DOC, TABLE_END, TABLE_START } from "../../scripts/config-docs";
import { clusterNodes } from "../../lib/redis";
import { displayUrl } from "../../lib/startup-checks";

describe("configuration", () => {
	it("gives a working single-process service with nothing set", () => {
		expect(loadConfig({})).toMatchObject({
			port: 3000,
			host: "0.0.0.0",
			transporter: undefined,
			redisUrl: undefined,
			services: [],
			rateLimit: 6000,
			rateLimitWindowMs: 60000,
			taskConcurrency: 32,
			logLevel: "info",
			redisPrefix: "tool-registry:",
			outboundAllowHosts: [],
			embeddingThreads: Math.min(2, availableParallelism())
		});
	});

	it("types what it parses", () => {
		const config = loadConfig({
			PORT: "0",
			RATE_LIMIT: "0",
			OUTBOUND_ALLOW_HOSTS: " a.test, 10.0.0.0/8 ,",
			METRICS: "off",
			EMBEDDING_THREADS: " 3 "
		});
		expect(config).toMatchObject({
			port: 0,
			rateLimit: 0,
			outboundAllowHosts: ["a.test", "10.0.0.0/8"],
			metrics: "off",
			embeddingThreads: 3
		});
	});

	it("takes a Redis Cluster as a redis+cluster:// list of seed nodes", () => {
		const url = "redis+cluster://app:p%40ss@r1:7000,r2:7001";
		expect(loadConfig({ REDIS_URL: url })).toMatchObject({ redisUrl: url });
		expect(clusterNodes(url)).toEqual({
			nodes: [
				{ host: "r1", port: 7000 },
				{ host: "r2", port: 7001 }
			],
			username: "app",
			password: "p@ss",
			tls: false
		});
		expect(displayUrl(url)).toBe("redis+cluster://r1:7000,r2:7001");
	});

	it("treats an empty variable as unset", () => {
		expect(loadConfig({ PORT: "", REDIS_URL: "" })).toMatchObject({ port: 3000, redisUrl: undefined });
	});

	it.each([
		["RATE_LIMIT", "abc", 'RATE_LIMIT must be a whole number ≥ 0 (got "abc")'],
		["RATE_LIMIT", "-1", "RATE_LIMIT must be a whole number ≥ 0"],
		["PORT", "70000", "PORT must be a whole number from 0 to 65535"],
		["TASK_CONCURRENCY", "0", "TASK_CONCURRENCY must be a whole number ≥ 1"],
		["EMBEDDING_THREADS", "0", 'EMBEDDING_THREADS must be a whole number from 1 to 32 (got "0")'],
		["EMBEDDING_THREADS", "two", "EMBEDDING_THREADS must be a whole number from 1 to 32"],
		[
			"REDIS_URL",
			"localhost:6379",
			"REDIS_URL must be a redis:// or rediss:// or redis+cluster:// or rediss+cluster:// URL"
		],
		[
			"REDIS_URL",
			"redis+cluster://r1:7000,r2",
			'REDIS_URL must list the cluster\'s nodes as host:port (got "r2")'
		],
		["ORCHESTRATOR_WS_URL", "http://o.test/ws", "ORCHESTRATOR_WS_URL must be a ws:// or wss:// URL"],
		["LOG_LEVEL", "verbose", "LOG_LEVEL must be one of fatal, error, warn, info, debug, trace"]
	])("refuses %s=%s, naming what it expects", (name, value, message) => {
		expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
		expect(() => loadConfig({ [name]: value })).toThrow(message);
	});

	it("reports every bad variable in one line and never echoes a secret", () => {
		let error: Error | undefined;
		try {
			loadConfig({ RATE_LIMIT: "abc", PORT: "x", SERVICE_TOKEN: "s3cret", CALLBACK_SECRET: "also-s3cret" });
		} catch (err) {
			error = err as Error;
		}
		expect(error?.message).toMatch(/^Invalid configuration: PORT .*; RATE_LIMIT .*$/);
		expect(error?.message).not.toContain("\n");
		expect(error?.message).not.toContain("s3cret");
	});

	it("is documented in docs/configuration.md exactly as lib/config.ts defines it (npm run config-docs)", () => {
		const doc = readFileSync(CONFIG_DOC, "utf8");
		const table = doc.slice(doc.indexOf(TABLE_START) + TABLE_START.length, doc.indexOf(TABLE_END));
		const rows = table
			.split("\n")
			.filter(line => line.startsWith("|"))
			.slice(2)
			.map(line =>
				line
					.slice(1, -1)
					.split("|")
					.map(cell => cell.trim())
			);
		expect(rows).toEqual(configurationRows());
		expect(rows).toHaveLength(Object.keys(CONFIG_VARIABLES).length);
	});
});
