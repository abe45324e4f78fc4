import { randomBytes } from "crypto";
import Redis from "ioredis";
import { RedisSourceStore } from "../../lib/store/redis-source-store";
import { RedisToolStore } from "../../lib/store/redis-tool-store";
import { SecretBox } from "../../lib/secret-box";
import { describeWithRedis, dropPrefix, uniquePrefix } from "../support/backends";
import { eventually } from "../support/eventually";
import { http as rest, startNode, type TestNode } from "../support/node";
import { everyValue } from "../support/redis-keys";
import { json, Upstream } from "../support/upstream";

const REDIS_URL = process.env.TEST_REDIS_URL!;

/** A stored tool whose config holds a secret header. */
const tool = {
	id: "01a2f000-0000-7000-8000-000000000001",
	tenant_id: "rotation",
	name: "t",
	description: "",
	type: "external_api",
	parameters: { type: "object", properties: {} },
	config: { url: "https://example.com", headers: { "X-Api-Key": "rotated-secret" } },
	metadata: {},
	permissions: { agents: ["*"] },
	timeout_ms: 5000,
	version: 1,
	definition_hash: "sha256:x",
	status: "active" as const,
	health: { state: "unknown" as const },
	created_at: new Date().toISOString(),
	updated_at: new Date().toISOString()
};

describeWithRedis("secrets at rest in Redis", () => {
	let node: TestNode;
	let upstream: Upstream;
	let upstreamUrl: string;
	let redis: Redis;
	const prefix = uniquePrefix();
	const call = (method: string, path: string, tenant: string, body?: unknown) =>
		rest(node.url, method, `/api/v1${path}`, { tenant, body });

	beforeAll(async () => {
		upstream = await Upstream.start((_req, res) => json(res, 200, { ok: true }));
		upstreamUrl = upstream.url();
		redis = new Redis(REDIS_URL);
		node = await startNode({
			redisUrl: REDIS_URL,
			redisPrefix: prefix,
			settings: { outboundAllowHosts: ["127.0.0.1"] }
		});
	});

	afterAll(async () => {
		await node.stop();
		await redis.quit();
		await upstream.close();
		await dropPrefix(REDIS_URL, prefix);
	});

	it("keeps no registered secret in clear in any key, while tools still run with them", async () => {
		const tenant = `secrets-${process.pid}`;
		const secrets = [1, 2, 3, 4].map(n => `s3cret-${n}-${randomBytes(6).toString("hex")}`);
		const created = await call("POST", "/tools", tenant, {
			name: "weather",
			description: "Weather",
			type: "external_api",
			config: { url: `${upstreamUrl}/weather`, method: "GET", headers: { "X-Api-Key": secrets[0] } }
		});
		expect(created.status).toBe(201);
		expect(JSON.stringify(created.body)).not.toContain(secrets[0]);
		const updated = await call("PATCH", `/tools/${created.body.id}`, tenant, {
			config: { headers: { "X-Api-Key": secrets[1] }, query: { api_token: secrets[2] } }
		});
		expect(updated.status).toBe(200);
		expect((await call("POST", `/tools/${created.body.id}/rollback`, tenant, { version: 1 })).status).toBe(
			200
		);
		const source = await call("POST", "/sources", tenant, {
			type: "openapi",
			name: "pets",
			spec: {
				openapi: "3.1.0",
				info: { title: "Pets", version: "1" },
				paths: { "/pets": { get: { operationId: "listPets", summary: "List pets", responses: {} } } }
			},
			base_url: upstreamUrl,
			headers: { Authorization: `Bearer ${secrets[3]}` }
		});
		expect(source.status).toBe(201);

		// The tool is active once its probe answered; then it runs with the secret it was given back.
		await eventually(async () => {
			const ran = await call("POST", "/internal/execute", tenant, {
				tool_id: created.body.id,
				parameters: {}
			});
			expect([ran.status, ran.body.status]).toEqual([200, "completed"]);
		});
		expect(upstream.received.some(req => req.headers["x-api-key"] === secrets[0])).toBe(true);

		const values = await everyValue(redis, prefix);
		expect(values.length).toBeGreaterThan(10);
		for (const secret of secrets) expect(values.filter(value => value.includes(secret))).toEqual([]);
	});

	it("re-encrypts under a rotated key in the background, old key still read meanwhile", async () => {
		const rotationPrefix = uniquePrefix();
		const [oldKey, newKey] = [randomBytes(32), randomBytes(32)];
		const before = new RedisToolStore(redis, rotationPrefix, undefined, new SecretBox(oldKey));
		await before.create(tool);
		await before.update(tool.id, current => ({ ...current, version: 2, description: "v2" }));
		const rotated = new RedisToolStore(redis, rotationPrefix, undefined, new SecretBox(newKey, [oldKey]));
		expect((await rotated.get(tool.id))!.config).toEqual(tool.config);
		// The current record and both versions in the history.
		expect((await rotated.reseal()).resealed).toEqual(new Map([["rotation", 3]]));
		expect((await rotated.reseal()).resealed).toEqual(new Map());
		const onlyNew = new RedisToolStore(redis, rotationPrefix, undefined, new SecretBox(newKey));
		expect((await onlyNew.get(tool.id))!.config).toEqual(tool.config);
		expect((await onlyNew.getVersion(tool.id, 1))!.config).toEqual(tool.config);
		await dropPrefix(REDIS_URL, rotationPrefix);
	});

	it("reads no record again on a restart under the key of the last complete pass, unless a rotation is under way", async () => {
		const restartPrefix = uniquePrefix();
		const [key, earlierKey] = [randomBytes(32), randomBytes(32)];
		const store = new RedisToolStore(redis, restartPrefix, undefined, new SecretBox(key));
		await store.create(tool);
		// The first pass finds every record current and records the key it ran under.
		expect((await store.reseal()).resealed).toEqual(new Map());
		// A record in clear, as stored before encryption was enabled: any pass would seal it.
		const recordKey = `${restartPrefix}tool:${tool.id}`;
		await redis.set(recordKey, JSON.stringify(tool));
		const restarted = new RedisToolStore(redis, restartPrefix, undefined, new SecretBox(key));
		expect((await restarted.reseal()).resealed).toEqual(new Map());
		expect(await redis.get(recordKey)).toContain("rotated-secret");
		// With an earlier key configured, a rotation is under way: every start reads every record.
		const rotating = new RedisToolStore(redis, restartPrefix, undefined, new SecretBox(key, [earlierKey]));
		expect((await rotating.reseal()).resealed).toEqual(new Map([["rotation", 1]]));
		expect(await redis.get(recordKey)).not.toContain("rotated-secret");
		await dropPrefix(REDIS_URL, restartPrefix);
	});

	it("re-encrypts a source's headers under a rotated key too", async () => {
		const rotationPrefix = uniquePrefix();
		const [oldKey, newKey] = [randomBytes(32), randomBytes(32)];
		const source = {
			id: "01a2f000-0000-7000-8000-000000000002",
			tenant_id: "rotation",
			type: "mcp" as const,
			name: "remote",
			url: "https://mcp.example.com/mcp",
			headers: { Authorization: "Bearer source-secret" },
			tools: {},
			removed: [] as string[],
			tool_count: 0,
			health: { state: "healthy" as const, failures: 0 },
			last_refresh_at: null,
			next_refresh_at: new Date().toISOString(),
			created_at: new Date().toISOString(),
			updated_at: new Date().toISOString()
		};
		await new RedisSourceStore(redis, rotationPrefix, new SecretBox(oldKey)).create(source);
		const rotated = new RedisSourceStore(redis, rotationPrefix, new SecretBox(newKey, [oldKey]));
		expect((await rotated.reseal()).resealed).toEqual(new Map([["rotation", 1]]));
		expect((await rotated.reseal()).resealed).toEqual(new Map());
		const onlyNew = new RedisSourceStore(redis, rotationPrefix, new SecretBox(newKey));
		expect((await onlyNew.get(source.id))!.headers).toEqual(source.headers);
		await dropPrefix(REDIS_URL, rotationPrefix);
	});
});
