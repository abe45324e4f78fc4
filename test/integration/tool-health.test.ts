import { OPS_COMMANDS } from "../../lib/repl-commands";
import type { StoredTool } from "../../types/wire";
import { BACKENDS, dropPrefix, uniquePrefix } from "../support/backends";
import { eventually } from "../support/eventually";
import { http, METRICS_ON, startNode, type TestNode } from "../support/node";
import { closedPort, json, Upstream } from "../support/upstream";

const INITIAL_MS = 300;

describe.each(BACKENDS)("tool health lifecycle on $name", ({ redisUrl }) => {
	const prefix = uniquePrefix();
	const tenant = "health-acme";
	let node: TestNode;
	let upstream: Upstream | undefined;
	/** Nothing listens on it yet: the upstream "comes up" later on it. */
	let port: number;

	const read = async (id: string): Promise<StoredTool> =>
		(await http(node.url, "GET", `/api/v1/tools/${id}`, { tenant })).body;
	const register = (name: string, url: string) =>
		http(node.url, "POST", "/api/v1/tools", {
			tenant,
			body: {
				name,
				description: "Current weather for a city",
				type: "external_api",
				parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
				config: { url, method: "GET" }
			}
		});

	beforeAll(async () => {
		port = await closedPort();
		node = await startNode({
			redisUrl,
			redisPrefix: prefix,
			broker: METRICS_ON,
			settings: {
				outboundAllowHosts: ["127.0.0.1"],
				health: { initialMs: INITIAL_MS, maxMs: 4 * INITIAL_MS, sweepMs: 25, claimMs: 5000 }
			}
		});
	});

	afterAll(async () => {
		await node.stop();
		await upstream?.close();
		if (redisUrl) await dropPrefix(redisUrl, prefix);
	});

	it("keeps a tool whose upstream does not answer active, discoverable and executable, and heals it when the upstream comes up", async () => {
		const created = await register("weather_lookup", `http://127.0.0.1:${port}/weather?q={{city}}`);
		expect(created.status).toBe(201);
		const id = created.body.id as string;

		// Connection refused: not a verdict on the definition, only on the upstream's health.
		const unreachable = await eventually(async () => {
			const tool = await read(id);
			expect(tool).toMatchObject({ status: "active", health: { state: "unreachable" } });
			return tool;
		});
		expect(unreachable.health.error).toMatch(/unreachable/);
		const firstDelay =
			Date.parse(unreachable.health.next_check_at!) - Date.parse(unreachable.health.checked_at!);
		expect(firstDelay).toBe(INITIAL_MS);

		// Probed again with backoff: the delay doubles.
		const again = await eventually(async () => {
			const tool = await read(id);
			expect(tool.health.checked_at).not.toBe(unreachable.health.checked_at);
			return tool;
		});
		expect(Date.parse(again.health.next_check_at!) - Date.parse(again.health.checked_at!)).toBe(
			2 * INITIAL_MS
		);
		expect(Date.parse(again.health.checked_at!)).toBeGreaterThanOrEqual(
			Date.parse(unreachable.health.next_check_at!)
		);

		// Discovery shows it with its health; healthy_only leaves it out.
		const found = await http(node.url, "POST", "/api/v1/registry/discover", {
			tenant,
			body: { query: "weather" }
		});
		expect(found.body.items).toEqual([
			expect.objectContaining({ health: expect.objectContaining({ state: "unreachable" }) })
		]);
		const healthy = await http(node.url, "POST", "/api/v1/registry/discover", {
			tenant,
			body: { query: "weather", healthy_only: true }
		});
		expect(healthy.body.items).toEqual([]);

		// It runs, and fails as its upstream does.
		const run = await http(node.url, "POST", "/api/v1/internal/execute", {
			tenant,
			body: { tool_name: "weather_lookup", parameters: { city: "Paris" } }
		});
		expect(run.status).toBe(200);
		expect(run.body).toMatchObject({ status: "failed", error: { type: "upstream_error" } });

		// Operators see it in the REPL and in metrics.
		const tools = await OPS_COMMANDS.find(c => c.command.startsWith("tools "))!.run(node.broker, { tenant });
		expect(tools).toMatch(/weather_lookup\s+\S+\s+health-acme\s+external_api\s+active\s+unreachable/);
		await (
			node.broker.getLocalService("registry") as unknown as { sampleMetrics(): Promise<void> }
		).sampleMetrics();
		const metrics = (await http(node.url, "GET", "/metrics")).body as string;
		expect(metrics).toMatch(/^tool_registry_tools_unreachable(\{[^}]*\})? [1-9]/m);

		// The upstream comes up (any HTTP answer counts): the tool is healthy by itself.
		upstream = await Upstream.start(
			(req, res) => json(res, req.path === "/" ? 404 : 200, { city: "Paris", temp_c: 21 }),
			{ port }
		);
		const healed = await eventually(async () => {
			const tool = await read(id);
			expect(tool.health.state).toBe("healthy");
			return tool;
		}, 15000);
		expect(healed.status).toBe("active");
		expect(healed.health.next_check_at).toBeUndefined();
		const ok = await http(node.url, "POST", "/api/v1/internal/execute", {
			tenant,
			body: { tool_name: "weather_lookup", parameters: { city: "Paris" } }
		});
		expect(ok.body).toMatchObject({ status: "completed", result: { data: { city: "Paris", temp_c: 21 } } });
		const afterHeal = await http(node.url, "POST", "/api/v1/registry/discover", {
			tenant,
			body: { query: "weather", healthy_only: true }
		});
		expect(afterHeal.body.items.map((item: { tool: StoredTool }) => item.tool.id)).toEqual([id]);
		await (
			node.broker.getLocalService("registry") as unknown as { sampleMetrics(): Promise<void> }
		).sampleMetrics();
		expect((await http(node.url, "GET", "/metrics")).body).toMatch(
			/^tool_registry_tools_unreachable(\{[^}]*\})? 0$/m
		);
	}, 30000);

	it("refuses what will never work, an address the policy refuses, at registration", async () => {
		const refused = await register("intranet_lookup", "http://10.1.2.3/lookup");
		expect(refused.status).toBe(422);
		expect(refused.body.data).toEqual([
			{
				field: "config.url",
				message: "outbound address refused: 10.1.2.3 (private; OUTBOUND_ALLOW_HOSTS opens it)"
			}
		]);
	});
});
