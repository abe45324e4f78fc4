import { eventually } from "../support/eventually";
import { spawn, type ChildProcess } from "child_process";
import net, { type AddressInfo } from "net";
import { redactSecrets } from "../../lib/redacting-logger";
import { ServiceProcess } from "../support/process-node";

jest.setTimeout(120000);

const TOKEN = "log-secrets-service-token-0123456789";

async function freePort(): Promise<number> {
	const server = net.createServer().listen(0, "127.0.0.1");
	await new Promise(resolve => server.once("listening", resolve));
	const { port } = server.address() as AddressInfo;
	await new Promise(resolve => server.close(resolve));
	return port;
}

/** An HTTP upgrade to `path`; resolves the status line the gateway answered with. */
function upgrade(url: string, path: string): Promise<string> {
	return new Promise((resolve, reject) => {
		const { port } = new URL(url);
		const socket = net.connect(Number(port), "127.0.0.1", () =>
			socket.write(
				`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
					"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
			)
		);
		let answer = "";
		socket.on("data", chunk => (answer += chunk.toString()));
		socket.on("close", () => resolve(answer.split("\r\n")[0]));
		socket.on("error", reject);
	});
}

describe("redactSecrets", () => {
	it("takes out given secrets, API keys, bearer credentials and token query parameters", () => {
		const line =
			"GET /ws?tenant_id=a&token=abc.def-123 Authorization: Bearer s3cr3t-value key trk_0193-ab.c2VjcmV0X3ZhbHVl " +
			"callback with my-callback-secret and /x?api_key=k1&page=2";
		expect(redactSecrets(line, ["my-callback-secret"])).toBe(
			"GET /ws?tenant_id=a&token=[redacted] Authorization: Bearer [redacted] key trk_0193-ab.[redacted] " +
				"callback with [redacted] and /x?api_key=[redacted]&page=2"
		);
	});
});

describe("no secret in the logs", () => {
	let redis: ChildProcess | undefined;
	let node: ServiceProcess | undefined;
	afterAll(async () => {
		await node?.stop();
		redis?.kill("SIGKILL");
	});

	it("logs neither the service token nor an API key when requests and WebSocket upgrades fail", async () => {
		const redisPort = await freePort();
		redis = spawn("redis-server", ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", ""], {
			stdio: "ignore"
		});
		node = new ServiceProcess({
			REDIS_URL: `redis://127.0.0.1:${redisPort}`,
			REDIS_PREFIX: "log-secrets:",
			SERVICE_TOKEN: TOKEN,
			LOG_LEVEL: "debug"
		});
		const url = await node.url();
		const headers = {
			authorization: `Bearer ${TOKEN}`,
			"x-tenant-id": "acme",
			"content-type": "application/json"
		};
		// The gateway listens before every local service has started; until then it answers 503.
		const created = await eventually(async () => {
			const res = await fetch(`${url}/api/v1/keys`, {
				method: "POST",
				headers,
				body: JSON.stringify({ tenant_id: "acme", scopes: ["tools:read"] })
			});
			expect(res.status).toBe(201);
			return res;
		});
		const apiKey = ((await created.json()) as { api_key: string }).api_key;
		const keySecret = apiKey.split(".")[1];
		// Logged at debug by the gateway's request lines, query included.
		expect((await fetch(`${url}/api/v1/tools?token=${TOKEN}`, { headers })).status).toBe(200);
		expect((await fetch(`${url}/api/v1/tools?token=${apiKey}`, { headers })).status).toBe(200);

		// Redis goes away: credentials can no longer be checked, nor the rate limit kept, so these fail as 5xx.
		redis.kill("SIGKILL");
		const answers = await Promise.all([
			upgrade(url, `/ws?token=${TOKEN}&tenant_id=acme`),
			upgrade(url, `/ws?token=${apiKey}`),
			fetch(`${url}/api/v1/tools`, { headers: { authorization: `Bearer ${apiKey}` } }).then(res => res.status)
		]);
		expect(answers[0]).toMatch(/^HTTP\/1\.1 5\d\d/);
		expect(answers[1]).toMatch(/^HTTP\/1\.1 5\d\d/);
		expect(answers[2]).toBeGreaterThanOrEqual(500);
		await node.waitFor(/WebSocket upgrade failed/);

		const output = node.stdout + node.stderr;
		expect(output).toContain("/ws");
		expect(output).not.toContain(TOKEN);
		expect(output).not.toContain(keySecret);
	});
});
