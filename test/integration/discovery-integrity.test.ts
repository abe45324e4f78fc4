import { randomUUID } from "crypto";
import { TOOL_CORPUS } from "../fixtures/tool-corpus";
import { describeWithNats, describeWithRedis, dropPrefix, uniquePrefix } from "../support/backends";
import { eventually } from "../support/eventually";
import { http, startNode, type TestNode } from "../support/node";
import { SERVICES, newTenant, discover, register, expectedHash, datetimeTool } from "../support/discovery";

/** Discovery end to end: definition integrity hashes, and indexes across registry nodes on NATS. */

describe("definition integrity hashes", () => {
	let node: TestNode;
	const tenant = newTenant("hash");
	const HASH = /^sha256:[0-9a-f]{64}$/;
	const partnerApi = {
		name: "partner_orders",
		description: "Orders placed through the partner portal",
		type: "external_api",
		parameters: { type: "object", properties: { since: { type: "string" } }, required: ["since"] },
		config: {
			url: "https://partners.example.com/orders",
			method: "GET",
			headers: { Authorization: "Bearer partner-secret" }
		},
		metadata: { tags: ["orders"] }
	};

	beforeAll(async () => {
		node = await startNode({ services: SERVICES });
	});

	afterAll(() => node.stop());

	const get = (id: string, version?: number) =>
		http(node.url, "GET", `/api/v1/tools/${id}${version ? `?version=${version}` : ""}`, { tenant });
	const patch = (id: string, body: Record<string, unknown>) =>
		http(node.url, "PATCH", `/api/v1/tools/${id}`, { tenant, body });

	it("carries on every read a hash a client can recompute over the config as read", async () => {
		const created = await register(node, tenant, partnerApi);
		const clock = await register(node, tenant, datetimeTool("office_clock", "Local time at every office"));
		expect(created.config.headers).toEqual({ Authorization: "********" });
		const reads = [
			created,
			clock,
			(await get(created.id)).body,
			...(await http(node.url, "GET", "/api/v1/tools?limit=200", { tenant })).body.items,
			...(await discover(node, tenant, { query: "office clock" })).body.items.map((item: any) => item.tool)
		];
		expect(reads.length).toBeGreaterThanOrEqual(6);
		for (const read of reads) {
			expect(read.definition_hash).toMatch(HASH);
			expect([read.name, read.definition_hash]).toEqual([read.name, expectedHash(read)]);
		}
	});

	it("changes the hash with the definition and keeps the old one on the old version", async () => {
		const created = await register(node, tenant, { ...partnerApi, name: "partner_orders_v" });
		const updated = await patch(created.id, {
			description: "Orders placed through the partner portal, newest first"
		});
		expect(updated.status).toBe(200);
		expect(updated.body.version).toBe(2);
		expect(updated.body.definition_hash).not.toBe(created.definition_hash);
		expect(updated.body.definition_hash).toBe(expectedHash(updated.body));

		const v1 = await get(created.id, 1);
		expect(v1.status).toBe(200);
		expect(v1.body).toMatchObject({
			version: 1,
			description: "Orders placed through the partner portal",
			definition_hash: created.definition_hash
		});
		expect(v1.body.definition_hash).toBe(expectedHash(v1.body));
		expect((await get(created.id, 2)).body.definition_hash).toBe(updated.body.definition_hash);
		expect((await get(created.id)).body.definition_hash).toBe(updated.body.definition_hash);

		const parameters = {
			...partnerApi.parameters,
			properties: { since: { type: "string", format: "date" } }
		};
		const reparametrised = await patch(created.id, { parameters });
		expect(reparametrised.body.definition_hash).not.toBe(updated.body.definition_hash);
		const renamed = await patch(created.id, { name: "partner_orders_renamed" });
		expect(renamed.body.definition_hash).not.toBe(reparametrised.body.definition_hash);
		const moved = await patch(created.id, {
			config: { ...renamed.body.config, url: "https://partners.example.com/v2/orders" }
		});
		expect(moved.body.definition_hash).not.toBe(renamed.body.definition_hash);
		expect(moved.body.definition_hash).toBe(expectedHash(moved.body));
	});

	it("keeps the hash when only metadata, permissions or a masked secret change", async () => {
		const created = await register(node, tenant, { ...partnerApi, name: "partner_orders_meta" });
		const tagged = await patch(created.id, { metadata: { tags: ["orders", "partners"], category: "sales" } });
		const restricted = await patch(created.id, { permissions: { agents: ["agent-sales"] } });
		const rotated = await patch(created.id, {
			config: { ...partnerApi.config, headers: { Authorization: "Bearer rotated-secret" } }
		});
		expect([tagged.body.version, restricted.body.version, rotated.body.version]).toEqual([2, 3, 4]);
		for (const res of [tagged, restricted, rotated])
			expect(res.body.definition_hash).toBe(created.definition_hash);
	});

	it("never takes definition_hash from a body: a read sent back is accepted and rehashed", async () => {
		const created = await register(node, tenant, datetimeTool("roundtrip_clock", "Clock of the round trip"));
		const forged = "sha256:" + "0".repeat(64);
		const res = await patch(created.id, {
			...created,
			definition_hash: forged,
			description: "Clock, round-tripped"
		});
		expect(res.status).toBe(200);
		expect(res.body.definition_hash).not.toBe(forged);
		expect(res.body.definition_hash).toBe(expectedHash(res.body));
		const copy = await http(node.url, "POST", "/api/v1/tools", {
			tenant: newTenant("hash-copy"),
			body: { ...created, definition_hash: forged }
		});
		expect(copy.status).toBe(201);
		expect(copy.body.definition_hash).toBe(created.definition_hash);
	});
});

describeWithNats("discovery indexes across registry nodes on NATS", () => {
	describeWithRedis("sharing one Redis store", () => {
		const transporter = process.env.TEST_NATS_URL!;
		const redisUrl = process.env.TEST_REDIS_URL!;
		const namespace = `discovery-${randomUUID()}`;
		const prefix = uniquePrefix();
		const tenant = newTenant("cluster");
		const nodes: TestNode[] = [];
		let a: TestNode;
		let b: TestNode;

		const start = async (nodeID: string) => {
			const node = await startNode({
				services: SERVICES,
				transporter,
				redisUrl,
				redisPrefix: prefix,
				nodeID: `${nodeID}-${process.pid}`,
				broker: { namespace }
			});
			nodes.push(node);
			return node;
		};
		/** The nodes whose registry `node` would send a `tool.*` event to. */
		const listenersKnownTo = (node: TestNode) =>
			node.broker.registry
				.getEventList({ withEndpoints: true })
				.filter(
					(event: { name: string; group: string }) => event.name === "tool.*" && event.group === "registry"
				)
				.flatMap((event: { endpoints?: { nodeID: string; available: boolean }[] }) => event.endpoints ?? [])
				.filter(endpoint => endpoint.available)
				.map(endpoint => endpoint.nodeID)
				.sort();
		/** Resolves once every node knows every other node's registry (and so sends it `tool.*` events). */
		const meshed = () =>
			eventually(async () => {
				const all = nodes.map(node => node.broker.nodeID).sort();
				for (const node of nodes)
					expect([node.broker.nodeID, listenersKnownTo(node)]).toEqual([node.broker.nodeID, all]);
			});
		const idsOn = async (node: TestNode, body: Record<string, unknown>, agent?: string) =>
			(await discover(node, tenant, { limit: 100, ...body }, agent)).body.items.map(
				(item: any) => item.tool.id
			);

		beforeAll(async () => {
			a = await start("discovery-a");
			b = await start("discovery-b");
			await meshed();
			// Node B builds its index now, so every later change must reach it as an event.
			expect(await idsOn(b, { query: "ledger" })).toEqual([]);
		});

		afterAll(async () => {
			await Promise.all(nodes.map(node => node.stop()));
			await dropPrefix(redisUrl, prefix);
		});

		it("shows on node B a tool registered through node A", async () => {
			const tool = await register(a, tenant, TOOL_CORPUS.find(t => t.name === "currency_convert") as never);
			await eventually(async () =>
				expect((await idsOn(b, { query: "convert dollars to euros" }))[0]).toBe(tool.id)
			);
		});

		it("shows on node B a patch made through node A, ranked by the new definition", async () => {
			const tool = await register(a, tenant, datetimeTool("ledger_export", "Export the general ledger"));
			await eventually(async () => expect(await idsOn(b, { query: "ledger" })).toEqual([tool.id]));
			const patched = await http(a.url, "PATCH", `/api/v1/tools/${tool.id}`, {
				tenant,
				body: { description: "Export the trial balance as a spreadsheet", metadata: { tags: ["accounting"] } }
			});
			expect(patched.status).toBe(200);
			await eventually(async () => {
				const res = await discover(b, tenant, { query: "trial balance spreadsheet" });
				expect(res.body.items[0].tool).toMatchObject({ id: tool.id, version: 2 });
				expect(res.body.items[0].tool.definition_hash).toBe(patched.body.definition_hash);
			});
			expect(await idsOn(b, { tags: ["accounting"] })).toEqual([tool.id]);
		});

		it("follows on node B a permission change made through node A", async () => {
			const tool = await register(a, tenant, datetimeTool("board_minutes", "Minutes of board meetings"));
			await eventually(async () =>
				expect(await idsOn(b, { query: "board meetings" }, "agent-b")).toEqual([tool.id])
			);
			await http(a.url, "PATCH", `/api/v1/tools/${tool.id}`, {
				tenant,
				body: { permissions: { agents: ["agent-a"] } }
			});
			await eventually(async () =>
				expect(await idsOn(b, { query: "board meetings" }, "agent-b")).toEqual([])
			);
			expect(await idsOn(b, { query: "board meetings" }, "agent-a")).toEqual([tool.id]);
		});

		it("drops from node B a tool deleted through node A", async () => {
			const tool = await register(a, tenant, datetimeTool("obsolete_report", "Obsolete quarterly report"));
			await eventually(async () => expect(await idsOn(b, { query: "obsolete report" })).toEqual([tool.id]));
			expect((await http(a.url, "DELETE", `/api/v1/tools/${tool.id}`, { tenant })).status).toBe(204);
			await eventually(async () => expect(await idsOn(b, { query: "obsolete report" })).toEqual([]));
			expect(await idsOn(b, {})).not.toContain(tool.id);
		});

		it("shows on node B a global tool registered through node A in an index it already holds", async () => {
			const name = `fleet_status_${process.pid}`;
			const tool = await register(a, "*", datetimeTool(name, "Status of the delivery fleet vehicles"));
			await eventually(async () =>
				expect(await idsOn(b, { query: "delivery fleet vehicles" })).toEqual([tool.id])
			);
		});

		it("builds a later node's index from the store, then keeps it current from events", async () => {
			const before = await register(
				a,
				tenant,
				datetimeTool("warehouse_capacity", "Free pallet capacity per warehouse")
			);
			const c = await start("discovery-c");
			expect(await idsOn(c, { query: "pallet capacity" })).toEqual([before.id]);
			const names = (await discover(c, tenant, { limit: 100 })).body.items.map((item: any) => item.tool.name);
			expect(names).toEqual(
				expect.arrayContaining(["currency_convert", "ledger_export", "warehouse_capacity"])
			);
			expect(names).not.toContain("obsolete_report");
			await meshed();
			const after = await register(
				b,
				tenant,
				datetimeTool("dock_schedule", "Loading dock schedule for trucks")
			);
			await eventually(async () =>
				expect(await idsOn(c, { query: "loading dock trucks" })).toEqual([after.id])
			);
			await eventually(async () =>
				expect(await idsOn(a, { query: "loading dock trucks" })).toEqual([after.id])
			);
		});

		// A node's gateway answers before its peers have heard of it (about one second on NATS): an index it
		// builds in that window must still learn of changes made meanwhile, or it stays stale for good.
		it("keeps current the index of a just-joined node with changes made in its first second", async () => {
			const d = await start("discovery-d");
			expect(await idsOn(d, { query: "forklift maintenance" })).toEqual([]);
			const tool = await register(
				a,
				tenant,
				datetimeTool("forklift_service", "Forklift maintenance schedule")
			);
			await meshed();
			await eventually(async () =>
				expect(await idsOn(d, { query: "forklift maintenance" })).toEqual([tool.id])
			);
		});
	});
});
