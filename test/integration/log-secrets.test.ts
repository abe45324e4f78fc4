import { eventually } from "../support/eventually";
import { redactSecrets } from "../../lib/redacting-logger";
import { OwnRedisServer } from "../support/redis-server";
import { ServiceProcess } from "../support/process-node";
import { upgrade } from "../support/upgrade";

jest.setTimeout(120000);

const TOKEN = "log-secrets-service-token-0123456789";

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
	let redis: OwnRedisServer | undefined;
	let node: ServiceProcess | undefined;
	afterAll(async () => {
		await node?.stop();
		await redis?.kill();
	});

	it("logs neither the service token nor an API key when requests and WebSocket upgrades fail", async () => {
		redis = await OwnRedisServer.start();
		node = new ServiceProcess({
			REDIS_URL: redis.url,
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
		await eventually(async () => expect((await fetch(`${url}/health/ready`)).status).toBe(200));
		const created = await fetch(`${url}/api/v1/keys`, {
			method: "POST",
			headers,
			body: JSON.stringify({ tenant_id: "acme", scopes: ["tools:read"] })
		});
		expect(created.status).toBe(201);
		const apiKey = ((await created.json()) as { api_key: string }).api_key;
		const keySecret = apiKey.split(".")[1];
		// Logged at debug by the gateway's request lines, query included.
		expect((await fetch(`${url}/api/v1/tools?token=${TOKEN}`, { headers })).status).toBe(200);
		expect((await fetch(`${url}/api/v1/tools?token=${apiKey}`, { headers })).status).toBe(200);

		// Redis goes away: credentials can no longer be checked, nor the rate limit kept, so these fail as 5xx.
		await redis.kill();
		const answers = await Promise.all([
			upgrade(url, `/ws?token=${TOKEN}&tenant_id=acme`).then(head => head.split("\r\n")[0]),
			upgrade(url, `/ws?token=${apiKey}`).then(head => head.split("\r\n")[0]),
			fetch(`${url}/api/v1/tools`, { headers: { authorization: `Bearer ${apiKey}` } }).then(res => res.status)
		]);
		expect(answers[0]).toMatch(/^HTTP\/1\.1 5\d\d/);
		expect(answers[1]).toMatch(/^HTTP\/1\.1 5\d\d/);
		expect(answers[2]).toBeGreaterThanOrEqual(500);
		// The outage is logged once, by the gateway's Redis connection, with nothing of the failed requests.
		await node.waitFor(/Redis \S+ is unreachable/);

		const output = node.stdout + node.stderr;
		expect(output).not.toContain(TOKEN);
		expect(output).not.toContain(keySecret);
	});
});
