import { randomUUID } from "crypto";
import type { DiscoveryIndex } from "../../lib/discovery/discovery-index";
import { describeWithNats, dropPrefix, uniquePrefix } from "../support/backends";
import { calculatorTool } from "../support/definitions";
import { eventually } from "../support/eventually";
import { http, startNode, type TestNode } from "../support/node";

const TENANTS = Array.from({ length: 20 }, (_, i) => `shard-tenant-${i}`);

/** The tenants whose discovery index a registry node holds. */
const indexedOn = (node: TestNode): string[] =>
	(node.broker.getLocalService("registry") as unknown as { discovery: DiscoveryIndex }).discovery.tenants();

const describeWithBoth = process.env.TEST_REDIS_URL ? describeWithNats : describe.skip;

describeWithBoth("discovery sharded by tenant over two registry nodes (NATS, one Redis)", () => {
	const redisUrl = process.env.TEST_REDIS_URL!;
	const transporter = process.env.TEST_NATS_URL!;
	const namespace = `test-${randomUUID()}`;
	const prefix = uniquePrefix();
	let gateway: TestNode;
	let a: TestNode;
	let b: TestNode | null;

	const registryNode = (nodeID: string) =>
		startNode({
			services: ["registry", "validator"],
			transporter,
			nodeID,
			redisUrl,
			redisPrefix: prefix,
			settings: { discoverySharding: "tenant" },
			broker: { namespace }
		});

	/** Each tenant's own tool is found by its own words, and no other tenant's. */
	const discoversOwnTools = async () => {
		for (const tenant of TENANTS) {
			const res = await http(gateway.url, "POST", "/api/v1/registry/discover", {
				tenant,
				body: { query: `evaluate ${tenant}`, mode: "lexical" }
			});
			expect(res.status).toBe(200);
			const names = (res.body.items as { tool: { name: string; tenant_id: string } }[])
				.filter(item => item.tool.tenant_id !== "*")
				.map(item => item.tool.name);
			expect(names).toEqual([`calc_${tenant.replace(/-/g, "_")}`]);
		}
	};

	beforeAll(async () => {
		[a, b] = await Promise.all([registryNode("registry-a"), registryNode("registry-b")]);
		gateway = await startNode({
			services: ["api"],
			transporter,
			nodeID: "gateway",
			redisUrl,
			redisPrefix: prefix,
			broker: { namespace }
		});
		await gateway.broker.waitForServices(["registry", "validator"], 20000);
		// Both registry nodes must know each other before ownership is asked.
		await eventually(async () => {
			for (const node of [a, b!])
				expect(node.broker.registry.getActionEndpoints("registry.discover")?.endpoints).toHaveLength(2);
		}, 20000);
		for (const tenant of TENANTS) {
			const res = await http(gateway.url, "POST", "/api/v1/tools", {
				tenant,
				body: calculatorTool(`calc_${tenant.replace(/-/g, "_")}`, {
					description: `Evaluates arithmetic for ${tenant}`
				})
			});
			expect(res.status).toBe(201);
		}
	}, 60000);

	afterAll(async () => {
		await Promise.all([gateway?.stop(), a?.stop(), b?.stop()]);
		await dropPrefix(redisUrl, prefix);
	});

	it("answers every tenant correctly while each node holds about half of the indexes", async () => {
		await discoversOwnTools();
		const onA = indexedOn(a);
		const onB = indexedOn(b!);
		expect(new Set([...onA, ...onB])).toEqual(new Set(TENANTS));
		expect(onA.filter(tenant => onB.includes(tenant))).toEqual([]);
		for (const held of [onA, onB]) {
			expect(held.length).toBeGreaterThanOrEqual(5);
			expect(held.length).toBeLessThanOrEqual(15);
		}
	}, 60000);

	it("hands a leaving node's tenants to the one that remains, which answers them all", async () => {
		await b!.stop();
		b = null;
		await eventually(async () => {
			expect(gateway.broker.registry.getActionEndpoints("registry.discover")?.endpoints).toHaveLength(1);
		}, 20000);
		await discoversOwnTools();
		expect(new Set(indexedOn(a))).toEqual(new Set(TENANTS));
	}, 60000);
});
