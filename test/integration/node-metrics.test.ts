import net, { type AddressInfo } from "net";
import { eventually } from "../support/eventually";
import { ServiceProcess } from "../support/process-node";
import { OwnRedisServer } from "../support/redis-server";

// Each node is a process of its own, started from the TypeScript sources.
jest.setTimeout(90000);

const TOKEN = "node-metrics-token-0123456789";
/**
 * Only the executor service, from the TypeScript sources: the runner resolves a SERVICES name to a
 * compiled `.service.js` only, and the config reads SERVICES to know the node runs no gateway.
 */
const EXECUTOR_ONLY = { SERVICES: "executor.service.ts" };

/** A port free right now on 127.0.0.1: the nodes must be told their PORT, as an operator would. */
async function freePort(): Promise<number> {
	const server = net.createServer().listen(0, "127.0.0.1");
	await new Promise(resolve => server.once("listening", resolve));
	const { port } = server.address() as AddressInfo;
	await new Promise(resolve => server.close(resolve));
	return port;
}

/** Whether anything accepts a TCP connection at host:port. */
function accepts(host: string, port: number): Promise<boolean> {
	return new Promise(resolve => {
		const socket = net.connect(port, host);
		socket.once("connect", () => resolve(!socket.destroy()));
		socket.once("error", () => resolve(false));
	});
}

describe("metrics of nodes without a gateway", () => {
	const nodes: ServiceProcess[] = [];
	afterAll(() => Promise.all(nodes.map(node => node.stop())));

	it("two executor nodes on one host with distinct PORTs both run, each behind the service token on HOST", async () => {
		const ports = [await freePort(), await freePort()];
		for (const port of ports)
			nodes.push(
				new ServiceProcess({ ...EXECUTOR_ONLY, PORT: String(port), HOST: "127.0.0.1", SERVICE_TOKEN: TOKEN })
			);
		for (const [i, node] of nodes.entries())
			await node.waitFor(new RegExp(`Metrics listening on http://127\\.0\\.0\\.1:${ports[i]}/metrics`));

		for (const [i, port] of ports.entries()) {
			const url = `http://127.0.0.1:${port}`;
			const anonymous = await fetch(`${url}/metrics`);
			expect(anonymous.status).toBe(401);
			expect(await anonymous.json()).toMatchObject({ code: 401, type: "UNAUTHORIZED" });
			const wrong = await fetch(`${url}/metrics`, { headers: { authorization: "Bearer not-the-token" } });
			expect(wrong.status).toBe(401);
			const scrape = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
			expect(scrape.status).toBe(200);
			expect(await scrape.text()).toContain("moleculer_");
			expect((await fetch(`${url}/health`)).status).toBe(200);
			// Bound to HOST only: another loopback address of the same machine finds nothing there.
			expect(await accepts("127.0.0.2", port)).toBe(false);
			expect(nodes[i].exit).toBeNull();
		}
		expect(nodes.map(node => node.output).join("\n")).not.toMatch(/EADDRINUSE/);
	});

	it("answers /health/ready as a gateway does: 503 naming Redis while it is down, 200 once it is back", async () => {
		const redis = await OwnRedisServer.start();
		try {
			const port = await freePort();
			const node = new ServiceProcess({
				...EXECUTOR_ONLY,
				PORT: String(port),
				HOST: "127.0.0.1",
				SERVICE_TOKEN: TOKEN,
				REDIS_URL: redis.url,
				// Without NATS (a local run) the node has no transporter to check.
				...(process.env.TEST_NATS_URL ? { TRANSPORTER: process.env.TEST_NATS_URL } : {}),
				NAMESPACE: `node-ready-${process.pid}`
			});
			nodes.push(node);
			await node.waitFor(/Metrics listening on/);
			const ready = async () => {
				const res = await fetch(`http://127.0.0.1:${port}/health/ready`);
				return { status: res.status, body: await res.json() };
			};
			await eventually(async () =>
				expect(await ready()).toEqual({
					status: 200,
					body: {
						status: "ready",
						checks: {
							services: "ok",
							...(process.env.TEST_NATS_URL ? { transporter: "ok" } : {}),
							redis: "ok"
						},
						failed: []
					}
				})
			);
			await redis.kill();
			await eventually(async () =>
				expect(await ready()).toMatchObject({
					status: 503,
					body: { status: "unavailable", checks: { redis: "down" }, failed: ["redis"] }
				})
			);
			await redis.resume();
			await eventually(async () =>
				expect(await ready()).toMatchObject({ status: 200, body: { failed: [] } })
			);
		} finally {
			await redis.kill();
		}
	});

	it("says in one line that its PORT is taken and exits non-zero", async () => {
		const taken = net.createServer().listen(0, "127.0.0.1");
		await new Promise(resolve => taken.once("listening", resolve));
		const { port } = taken.address() as AddressInfo;
		try {
			const node = new ServiceProcess({ ...EXECUTOR_ONLY, PORT: String(port), SERVICE_TOKEN: TOKEN });
			nodes.push(node);
			const exit = await node.exited;
			expect(exit.code).not.toBe(0);
			expect(node.output).toMatch(
				new RegExp(`Metrics cannot listen on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`)
			);
		} finally {
			taken.close();
		}
	});
});

describe("metrics of the gateway as npm start runs it", () => {
	const nodes: ServiceProcess[] = [];
	afterAll(() => Promise.all(nodes.map(node => node.stop())));
	const start = (env: NodeJS.ProcessEnv) => {
		const node = new ServiceProcess({ SERVICE_TOKEN: TOKEN, EMBEDDINGS: "off", ...env });
		nodes.push(node);
		return node.url();
	};
	const scrape = (url: string) => fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });

	it("serves the per-request families once each, from the service's own counters", async () => {
		const url = await start({});
		await fetch(`${url}/api/v1/tools`, { headers: { authorization: `Bearer ${TOKEN}`, "x-tenant-id": "m" } });
		const res = await scrape(url);
		expect(res.status).toBe(200);
		const text = await res.text();
		for (const family of ["moleculer_request_total", "moleculer_request_time", "moleculer_request_levels"])
			expect([family, text.match(new RegExp(`^# TYPE ${family} `, "gm"))?.length]).toEqual([family, 1]);
		expect(text).toMatch(/^moleculer_request_total\{.*action="registry\.list".*\} [1-9]/m);
		expect(text).toMatch(/^process_memory_rss/m);
		expect(text).not.toMatch(/quantile=/);
	});

	it("METRICS=off leaves no metrics at all", async () => {
		const url = await start({ METRICS: "off" });
		expect((await scrape(url)).status).toBe(404);
	});
});
