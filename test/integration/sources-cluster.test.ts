import { randomUUID } from "node:crypto";
import { dropPrefix, uniquePrefix } from "../support/backends";
import { eventually } from "../support/eventually";
import { McpUpstream } from "../support/mcp-upstream";
import { http, startNode, type NodeOptions, type TestNode } from "../support/node";

/**
 * An MCP source in a cluster: two nodes sharing Redis and NATS, a real MCP server (official SDK) on
 * loopback. Each node holds its own pooled client of the source and listens to its list_changed.
 */

const describeWithNatsAndRedis =
	process.env.TEST_REDIS_URL && process.env.TEST_NATS_URL ? describe : describe.skip;

const TENANT = `sources-cluster-${process.pid}`;
const empty = { type: "object", properties: {} } as const;

describeWithNatsAndRedis("an MCP source shared by two nodes over Redis and NATS", () => {
	const redisUrl = process.env.TEST_REDIS_URL!;
	const prefix = uniquePrefix();
	const options: NodeOptions = {
		transporter: process.env.TEST_NATS_URL,
		redisUrl,
		redisPrefix: prefix,
		settings: { outboundAllowHosts: ["127.0.0.1"], tickMs: 50 },
		broker: { namespace: `sources-${randomUUID()}` }
	};
	const upstream = new McpUpstream();
	let a: TestNode | undefined;
	let b: TestNode | undefined;
	let sourceId: string;

	const api = (node: TestNode, method: string, path: string, body?: unknown) =>
		http(node.url, method, path, { body, tenant: TENANT });
	const toolNamed = async (node: TestNode, name: string): Promise<any> =>
		(await api(node, "GET", "/api/v1/tools?limit=200")).body.items.find(
			(tool: { name: string }) => tool.name === name
		);
	const describe = (text: string) => () => ({ content: [{ type: "text" as const, text }] });

	beforeAll(async () => {
		upstream.define({ name: "one", description: "The first tool", inputSchema: empty }, describe("one"));
		upstream.define({ name: "two", description: "The second tool", inputSchema: empty }, describe("two"));
		await upstream.start();
		a = await startNode({ ...options, nodeID: `sources-a-${process.pid}` });
	}, 60000);

	afterAll(async () => {
		await b?.stop();
		await a?.stop();
		await upstream.stop();
		await dropPrefix(redisUrl, prefix);
	}, 60000);

	it("is registered on one node and read, listened to and run on another that starts later", async () => {
		const created = await api(a!, "POST", "/api/v1/sources", {
			type: "mcp",
			name: "shared",
			url: upstream.url
		});
		expect(created.status).toBe(201);
		expect(created.body.tool_count).toBe(2);
		sourceId = created.body.id;
		const sessions = upstream.sessionCount;

		b = await startNode({ ...options, nodeID: `sources-b-${process.pid}` });
		// A node that starts connects to the MCP sources it finds in the store, to hear their list_changed.
		await eventually(async () => expect(upstream.sessionCount).toBeGreaterThan(sessions), 15000);
		expect((await api(b, "GET", `/api/v1/sources/${sourceId}`)).body).toMatchObject({ tool_count: 2 });
		const run = await api(b, "POST", "/api/v1/internal/execute", {
			tool_name: "shared__two",
			parameters: {}
		});
		expect(run.body).toMatchObject({ status: "completed", result: { content: [{ text: "two" }] } });
	});

	it("follows list_changed heard by both nodes: one change, one new version", async () => {
		const before = await toolNamed(b!, "shared__one");
		upstream.define(
			{ name: "one", description: "The first tool, changed", inputSchema: empty },
			describe("one")
		);
		await upstream.notifyToolsChanged();
		const after = await eventually(async () => {
			const tool = await toolNamed(a!, "shared__one");
			expect(tool.description).toBe("The first tool, changed");
			return tool;
		});
		expect(after.definition_hash).not.toBe(before.definition_hash);
		// Both nodes refresh; let both finish before counting versions.
		await eventually(async () => {
			const versions = (await api(a!, "GET", `/api/v1/tools/${before.id}/versions`)).body.items;
			expect(versions.map((v: { definition_hash: string }) => v.definition_hash)).toEqual([
				after.definition_hash,
				before.definition_hash
			]);
		});
	});

	it("is heard by a node alone once the other stops, and deleted there", async () => {
		await a!.stop();
		a = undefined;
		upstream.define({ name: "three", description: "The third tool", inputSchema: empty }, describe("three"));
		await upstream.notifyToolsChanged();
		await eventually(async () =>
			expect(await toolNamed(b!, "shared__three")).toMatchObject({ status: "active" })
		);
		const run = await api(b!, "POST", "/api/v1/internal/execute", {
			tool_name: "shared__three",
			parameters: {}
		});
		expect(run.body).toMatchObject({ status: "completed", result: { content: [{ text: "three" }] } });
		expect((await api(b!, "DELETE", `/api/v1/sources/${sourceId}`)).status).toBe(204);
		expect(await toolNamed(b!, "shared__one")).toBeUndefined();
	});
});
