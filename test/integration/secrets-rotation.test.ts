import { randomBytes } from "crypto";
import Redis from "ioredis";
import { SecretBox } from "../../lib/secret-box";
import { describeWithRedis, dropPrefix, uniquePrefix } from "../support/backends";
import { eventually } from "../support/eventually";
import { McpUpstream } from "../support/mcp-upstream";
import { http, startNode, type TestNode } from "../support/node";
import { everyValue } from "../support/redis-keys";

const REDIS_URL = process.env.TEST_REDIS_URL!;
const TENANT = "rotation";

/**
 * A rotation of SECRETS_KEY as an operator runs it: the node restarts with the new key and the old
 * one as previous; every stored secret, tools' and sources' alike, is sealed again in the background
 * and the rotation is in the audit trail; then the old key is dropped and everything still works.
 */
describeWithRedis("rotating SECRETS_KEY", () => {
	const prefix = uniquePrefix();
	const [oldKey, newKey] = [randomBytes(32).toString("hex"), randomBytes(32).toString("hex")];
	const oldKeyId = new SecretBox(Buffer.from(oldKey, "hex")).keyId;
	const newKeyId = new SecretBox(Buffer.from(newKey, "hex")).keyId;
	let upstream: McpUpstream;
	let redis: Redis;
	let node: TestNode | undefined;

	const start = async (secretsKey: string, secretsKeyPrevious: string[] = []) =>
		(node = await startNode({
			redisUrl: REDIS_URL,
			redisPrefix: prefix,
			settings: { secrets: { secretsKey, secretsKeyPrevious }, outboundAllowHosts: ["127.0.0.1"] }
		}));
	const api = (method: string, path: string, body?: unknown) =>
		http(node!.url, method, `/api/v1${path}`, { tenant: TENANT, body });

	beforeAll(async () => {
		upstream = new McpUpstream();
		upstream.define(
			{ name: "echo", description: "Echoes", inputSchema: { type: "object", properties: {} } },
			() => ({
				content: [{ type: "text", text: "echo" }]
			})
		);
		await upstream.start();
		redis = new Redis(REDIS_URL);
	});

	afterAll(async () => {
		await node?.stop();
		await upstream?.stop();
		await dropPrefix(REDIS_URL, prefix);
		redis?.disconnect();
	});

	it("seals source headers and tool secrets again, records it, and needs the old key no more", async () => {
		await start(oldKey);
		const source = await api("POST", "/sources", {
			type: "mcp",
			name: "remote",
			url: upstream.url,
			headers: { "X-Upstream-Key": "source-secret" }
		});
		expect(source.status).toBe(201);
		const tool = await api("POST", "/tools", {
			name: "keyed",
			description: "Calls an API with a key",
			type: "external_api",
			config: { url: "https://api.example.com/x", headers: { "X-Api-Key": "tool-secret" } }
		});
		expect(tool.status).toBe(201);
		expect((await everyValue(redis, prefix)).some(value => value.includes(`enc:v1:${oldKeyId}:`))).toBe(true);
		await node!.stop();

		await start(newKey, [oldKey]);
		await eventually(async () => {
			const { body } = await api("GET", "/audit?action=key.rotate");
			// A source refresh or a probe may seal a record under the new key first: counts vary, the entry does not.
			expect(body.items).toContainEqual(
				expect.objectContaining({
					actor: { kind: "service" },
					target: `secrets-key:${newKeyId}`,
					details: { tools: expect.any(Number) }
				})
			);
		}, 20000);
		await node!.stop();

		const values = await everyValue(redis, prefix);
		expect(values.filter(value => value.includes(`enc:v1:${oldKeyId}:`))).toEqual([]);
		for (const secret of ["source-secret", "tool-secret"])
			expect(values.filter(value => value.includes(secret))).toEqual([]);

		await start(newKey);
		upstream.receivedHeaders.length = 0;
		const refreshed = await api("POST", `/sources/${source.body.id}/refresh`);
		expect(refreshed.status).toBe(200);
		expect(refreshed.body).toMatchObject({ health: { state: "healthy" }, tool_count: 1 });
		const run = await api("POST", "/internal/execute", { tool_name: "remote__echo", parameters: {} });
		expect(run.body).toMatchObject({ status: "completed" });
		expect(upstream.receivedHeaders.some(headers => headers["x-upstream-key"] === "source-secret")).toBe(
			true
		);
		const resolved = await node!.broker.call<{ config: { headers: Record<string, string> } }, object>(
			"registry.resolve",
			{ tool_id: tool.body.id },
			{ meta: { tenant_id: TENANT } }
		);
		expect(resolved.config.headers["X-Api-Key"]).toBe("tool-secret");
		// Three node starts: minutes on a loaded machine, seconds on an idle one.
	}, 120000);
});
