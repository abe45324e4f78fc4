import { createServer, type Server } from "net";
import { ServiceProcess } from "../support/process-node";

/** A port nothing listens on: bound, then closed. */
async function closedPort(): Promise<number> {
	const server: Server = createServer();
	await new Promise<void>(resolve => server.listen(0, "127.0.0.1", resolve));
	const { port } = server.address() as { port: number };
	await new Promise(resolve => server.close(resolve));
	return port;
}

/** Starts a node as `npm start` does and resolves its exit, its output, and how long it took. */
async function startFailing(env: NodeJS.ProcessEnv) {
	const started = Date.now();
	const node = new ServiceProcess({ SERVICE_TOKEN: "startup-test-token", ...env });
	const timer = setTimeout(() => void node.stop(), 40000);
	const exit = await node.exited;
	clearTimeout(timer);
	const lines = node.stderr.split("\n").filter(Boolean);
	return { exit, lines, output: node.output, seconds: (Date.now() - started) / 1000 };
}

describe("a node started with bad configuration", () => {
	it("refuses RATE_LIMIT=abc in one line and exits non-zero", async () => {
		const { exit, lines } = await startFailing({ RATE_LIMIT: "abc" });
		expect(exit.code).toBe(1);
		expect(lines).toEqual(['Invalid configuration: RATE_LIMIT must be a whole number ≥ 0 (got "abc")']);
	});

	it("says in one line that its Redis cannot be reached and exits within 30 s", async () => {
		const port = await closedPort();
		const { exit, lines, output, seconds } = await startFailing({
			REDIS_URL: `redis://user:redis-password@127.0.0.1:${port}`
		});
		expect(exit.code).toBe(1);
		expect(lines).toEqual([
			expect.stringMatching(`^REDIS_URL redis://127.0.0.1:${port}: Redis cannot be reached \\(.*ECONNREFUSED`)
		]);
		expect(output).not.toContain("Unhandled error event");
		expect(output).not.toContain("redis-password");
		expect(seconds).toBeLessThan(30);
	});

	it("says in one line that its NATS cannot be reached and exits within 30 s", async () => {
		const port = await closedPort();
		const { exit, lines, seconds } = await startFailing({ TRANSPORTER: `nats://127.0.0.1:${port}` });
		expect(exit.code).toBe(1);
		expect(lines).toEqual([
			expect.stringMatching(`^TRANSPORTER nats://127.0.0.1:${port}: NATS cannot be reached`)
		]);
		expect(seconds).toBeLessThan(30);
	});
});
