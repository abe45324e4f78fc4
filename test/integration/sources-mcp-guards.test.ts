import { format } from "node:util";
import { Loggers } from "moleculer";
import { OPS_COMMANDS } from "../../lib/repl-commands";
import { eventually } from "../support/eventually";
import { McpUpstream } from "../support/mcp-upstream";
import { http, startNode, type TestNode } from "../support/node";
import { redirect, Upstream } from "../support/upstream";

/**
 * What keeps a pooled MCP source client honest, against real MCP servers (official SDK) on loopback:
 * the per-source circuit breaker and concurrency bound, reconnection after the server restarts,
 * periodic refresh without any notification, probing with backoff, redirects through the address
 * guard, and the source's header secrets kept out of every read, the REPL and the logs.
 */

const TENANT = `sources-guards-${process.pid}`;
const SECRET = "sk-live-0f1e2d3c4b5a69788796a5b4";
const empty = { type: "object", properties: {} } as const;
const text = (value: string) => ({ content: [{ type: "text" as const, text: value }] });

/** Every log line of the guarded node, at debug level. */
const logLines: string[] = [];
class CapturingLogger extends Loggers.Base<{ level?: "debug" }> {
	override getLogHandler() {
		return (type: string, args: unknown[]) => void logLines.push(`${type} ${format(...args)}`);
	}
}

let guarded: TestNode;
let periodic: TestNode;
const servers: { stop(): Promise<void> }[] = [];

const api = (node: TestNode, method: string, path: string, body?: unknown) =>
	http(node.url, method, path, { body, tenant: TENANT });
const execute = (node: TestNode, tool_name: string, parameters: Record<string, unknown> = {}) =>
	api(node, "POST", "/api/v1/internal/execute", { tool_name, parameters });
const toolNamed = async (node: TestNode, name: string): Promise<any> =>
	(await api(node, "GET", "/api/v1/tools?limit=200")).body.items.find(
		(t: { name: string }) => t.name === name
	);

async function upstreamWith(...names: string[]): Promise<McpUpstream> {
	const upstream = new McpUpstream();
	for (const name of names)
		upstream.define({ name, description: `The ${name} tool`, inputSchema: empty }, () => text(name));
	await upstream.start();
	servers.push(upstream);
	return upstream;
}

async function register(node: TestNode, name: string, url: string, headers?: Record<string, string>) {
	const created = await api(node, "POST", "/api/v1/sources", { type: "mcp", name, url, headers });
	expect(created.status).toBe(201);
	return created.body;
}

beforeAll(async () => {
	guarded = await startNode({
		settings: {
			outboundAllowHosts: ["127.0.0.1"],
			tickMs: 50,
			// Small enough to reach in a test; the executor reads the same setting for its per-tool guards.
			guards: {
				errorThresholdPercentage: 50,
				volumeThreshold: 3,
				rollingCountTimeout: 10000,
				resetTimeout: 5000,
				capacity: 2,
				maxGuards: 100
			}
		},
		broker: { logger: new CapturingLogger({ level: "debug" }) }
	});
	periodic = await startNode({
		settings: {
			outboundAllowHosts: ["127.0.0.1"],
			refreshIntervalMs: 300,
			probeBaseMs: 100,
			probeMaxMs: 400,
			tickMs: 50
		},
		broker: { metrics: { enabled: true } }
	});
});

afterAll(async () => {
	await guarded?.stop();
	await periodic?.stop();
	for (const server of servers) await server.stop();
});

describe("the pooled client of an MCP source", () => {
	it("opens one circuit per source: once the server keeps failing, its other tools fail fast without a request", async () => {
		const upstream = await upstreamWith("first", "second");
		const source = await register(guarded, "flaky", upstream.url);
		expect((await execute(guarded, "flaky__first")).body.status).toBe("completed");

		upstream.failWith = 503;
		for (let i = 0; i < 3; i++)
			expect((await execute(guarded, "flaky__first")).body).toMatchObject({
				status: "failed",
				error: { type: "upstream_error" }
			});
		// The failed calls had the source read again: it is unreachable now, and its tools with it.
		await eventually(async () =>
			expect((await api(guarded, "GET", `/api/v1/sources/${source.id}`)).body.health.state).toBe(
				"unreachable"
			)
		);
		expect((await toolNamed(guarded, "flaky__second")).health.state).toBe("unreachable");

		const hits = upstream.hits;
		const fast = await execute(guarded, "flaky__second");
		expect(fast.body).toMatchObject({
			status: "failed",
			error: { type: "upstream_error", message: expect.stringContaining("circuit open") }
		});
		expect(upstream.hits).toBe(hits);

		// After the reset timeout one trial call goes through; the server answers again and the circuit closes.
		upstream.failWith = null;
		await eventually(
			async () => expect((await execute(guarded, "flaky__second")).body.status).toBe("completed"),
			20000
		);
		await eventually(
			async () => expect((await execute(guarded, "flaky__first")).body.status).toBe("completed"),
			20000
		);
	});

	it("bounds the calls in flight to one server: one more fails at once, the others finish", async () => {
		let inFlight = 0;
		let release!: () => void;
		const gate = new Promise<void>(resolve => (release = resolve));
		const upstream = await upstreamWith("quick");
		upstream.define({ name: "hold", description: "Answers when let go", inputSchema: empty }, async () => {
			inFlight++;
			await gate;
			return text("held");
		});
		await register(guarded, "bounded", upstream.url);

		const held = [execute(guarded, "bounded__hold"), execute(guarded, "bounded__hold")];
		await eventually(async () => expect(inFlight).toBe(2));
		// A different tool of the same source: the executor's own per-tool bound has room, the source's has not.
		const refused = await execute(guarded, "bounded__quick");
		expect(refused.body).toMatchObject({
			status: "failed",
			error: { type: "upstream_error", message: expect.stringContaining("capacity") }
		});
		release();
		for (const answer of await Promise.all(held))
			expect(answer.body).toMatchObject({ status: "completed", result: { content: [{ text: "held" }] } });
		expect((await execute(guarded, "bounded__quick")).body.status).toBe("completed");
	});

	it("reconnects after the server restarts and forgets its session, and hears list_changed again", async () => {
		const upstream = await upstreamWith("ping");
		const source = await register(guarded, "restarting", upstream.url);
		expect((await execute(guarded, "restarting__ping")).body.status).toBe("completed");

		await upstream.stop();
		await upstream.start();
		// The pooled client still holds the old session: the server answers 404 and the call is sent on a new one.
		expect((await execute(guarded, "restarting__ping")).body).toMatchObject({
			status: "completed",
			result: { content: [{ text: "ping" }] }
		});
		upstream.define({ name: "pong", description: "Added after the restart", inputSchema: empty }, () =>
			text("pong")
		);
		await eventually(async () => {
			await upstream.notifyToolsChanged();
			expect(await toolNamed(guarded, "restarting__pong")).toMatchObject({ status: "active" });
		});
		const read = (await api(guarded, "GET", `/api/v1/sources/${source.id}`)).body;
		expect(read).toMatchObject({ tool_count: 2, health: { state: "healthy" } });
	});
});

describe("the source URL and its redirects pass the address guard", () => {
	let redirector: Upstream | null = null;
	afterEach(async () => {
		await redirector?.close();
		redirector = null;
	});

	it("follows a redirect within the server", async () => {
		const upstream = await upstreamWith("moved");
		upstream.redirects.set("/old", "/mcp");
		const source = await register(guarded, "moved", upstream.url.replace("/mcp", "/old"));
		expect(source).toMatchObject({ tool_count: 1, health: { state: "healthy" } });
		expect((await execute(guarded, "moved__moved")).body.status).toBe("completed");
	});

	it("does not follow a redirect to another origin, even an allowed one: nothing reaches it, no header leaves", async () => {
		const elsewhere = await upstreamWith("elsewhere");
		redirector = await Upstream.start((_req, res) => redirect(res, 307, elsewhere.url));
		const url = redirector.url("/mcp");
		const source = await register(guarded, "redirected", url, { "X-Upstream-Key": SECRET });
		expect(source).toMatchObject({
			tool_count: 0,
			health: { state: "unreachable", error: expect.stringContaining("within the server's origin") }
		});
		expect(elsewhere.hits).toBe(0);
	});
});

describe("a source's header secrets", () => {
	it("are masked in every read, the preview, the REPL and the logs", async () => {
		const upstream = await upstreamWith("secretive");
		const preview = await http(guarded.url, "POST", "/api/v1/sources?dry_run=true", {
			tenant: TENANT,
			body: { type: "mcp", name: "keeper", url: upstream.url, headers: { "X-Api-Key": SECRET } }
		});
		expect(preview.status).toBe(200);
		expect(preview.body.tools.map((tool: { name: string }) => tool.name)).toEqual(["keeper__secretive"]);
		expect(
			(await api(guarded, "GET", "/api/v1/sources")).body.items.map((s: { name: string }) => s.name)
		).not.toContain("keeper");

		const source = await register(guarded, "keeper", upstream.url, { "X-Api-Key": SECRET });
		expect(upstream.receivedHeaders.some(headers => headers["x-api-key"] === SECRET)).toBe(true);
		const reads = [
			source,
			preview.body,
			(await api(guarded, "GET", `/api/v1/sources/${source.id}`)).body,
			(await api(guarded, "GET", "/api/v1/sources")).body,
			(await api(guarded, "POST", `/api/v1/sources/${source.id}/refresh`)).body,
			await toolNamed(guarded, "keeper__secretive"),
			(await api(guarded, "GET", "/api/v1/audit?limit=100")).body
		];
		expect((await api(guarded, "GET", `/api/v1/sources/${source.id}`)).body.headers).toEqual({
			"X-Api-Key": "********"
		});
		for (const read of reads) expect(JSON.stringify(read)).not.toContain(SECRET);
		const command = (name: string) => OPS_COMMANDS.find(c => c.command.split(" ")[0] === name)!;
		expect(await command("sources").run(guarded.broker, {})).toContain("keeper");
		expect(await command("source").run(guarded.broker, { sourceId: source.id })).toContain("keeper");
		expect(logLines.length).toBeGreaterThan(0);
		expect(logLines.filter(line => line.includes(SECRET))).toEqual([]);
	});
});

describe("keeping a source current without being told", () => {
	it("reads the server again periodically: a changed description becomes a new version with a new hash", async () => {
		const upstream = await upstreamWith("probe");
		await register(periodic, "periodic", upstream.url);
		const before = await toolNamed(periodic, "periodic__probe");
		upstream.define({ name: "probe", description: "Changed quietly", inputSchema: empty }, () =>
			text("probe")
		);
		// No notifications/tools/list_changed: only the periodic refresh can see it.
		const after = await eventually(async () => {
			const tool = await toolNamed(periodic, "periodic__probe");
			expect(tool.description).toBe("Changed quietly");
			return tool;
		});
		expect(after).toMatchObject({ id: before.id, version: before.version + 1 });
		expect(after.definition_hash).not.toBe(before.definition_hash);
		const versions = (await api(periodic, "GET", `/api/v1/tools/${before.id}/versions`)).body.items;
		expect(versions.map((v: { definition_hash: string }) => v.definition_hash)).toEqual([
			after.definition_hash,
			before.definition_hash
		]);
		// An agent pinned to what it was shown is refused until it looks again.
		const pinned = await api(periodic, "POST", "/api/v1/internal/execute", {
			tool_name: "periodic__probe",
			parameters: {},
			expected_hash: before.definition_hash
		});
		expect(pinned.status).toBe(409);
		expect(pinned.body).toMatchObject({ type: "DEFINITION_CHANGED" });
	});

	it("probes an unreachable server with doubling waits, reports it in the metrics, and heals by itself", async () => {
		const upstream = await upstreamWith("heal");
		const source = await register(periodic, "healing", upstream.url);
		const sampled = async (name: string) => {
			await (
				periodic.broker.getLocalService("sources") as unknown as { sampleMetrics(): Promise<void> }
			).sampleMetrics();
			return periodic.broker.metrics.getMetric(name)!.get({ tenant: TENANT, source: "healing" })?.value;
		};
		expect(await sampled("tool_registry.source.healthy")).toBe(1);

		await upstream.stop();
		const waits = new Map<number, number>();
		await eventually(async () => {
			const { health } = (await api(periodic, "GET", `/api/v1/sources/${source.id}`)).body;
			if (health.state === "unreachable")
				waits.set(health.failures, Date.parse(health.next_check_at) - Date.parse(health.checked_at));
			expect(Math.max(0, ...waits.keys())).toBeGreaterThanOrEqual(4);
		});
		for (const [failures, wait] of waits) expect(wait).toBe(Math.min(100 * 2 ** (failures - 1), 400));
		expect((await toolNamed(periodic, "healing__heal")).health).toMatchObject({
			state: "unreachable",
			error: expect.any(String)
		});
		expect(await sampled("tool_registry.source.healthy")).toBe(0);
		expect(await sampled("tool_registry.source.tools")).toBe(1);

		await upstream.start();
		await eventually(async () =>
			expect((await toolNamed(periodic, "healing__heal")).health.state).toBe("healthy")
		);
		expect((await execute(periodic, "healing__heal")).body.status).toBe("completed");
		expect(await sampled("tool_registry.source.healthy")).toBe(1);
	});
});
