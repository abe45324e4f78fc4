import { eventually } from "../support/eventually";
import { startNode, type TestNode } from "../support/node";
import {
	BIG_BYTES,
	SLOW_MS,
	orchestratorUrl,
	closedPort,
	node,
	healthy,
	big,
	newTenant,
	call,
	register,
	execute,
	upstreamUrl,
	externalApi,
	registerAndRun,
	hitsOn,
	useRemoteSetup
} from "../support/remote";

/** Tools that call out, end to end (setup: test/support/remote.ts): upstream failures, the circuit breaker and the bulkhead. */

useRemoteSetup();

describe("external_api: upstream failures", () => {
	it("fails a slow upstream with timeout at the tool's timeout_ms", async () => {
		const tenant = newTenant();
		const slow = externalApi({ url: upstreamUrl("/slow") }, { timeout_ms: 300 });
		const tool = await register(node, tenant, slow);
		const started = Date.now();
		const res = await execute(node, tenant, { tool_id: tool.body.id });
		const elapsed = Date.now() - started;
		expect(res.body).toMatchObject({ status: "failed", error: { type: "timeout" } });
		expect(res.body.error.message).toMatch(/300 ms/);
		expect(elapsed).toBeGreaterThanOrEqual(290);
		expect(elapsed).toBeLessThan(SLOW_MS);
	});

	it("applies a request timeout_ms shorter than the tool's", async () => {
		const tenant = newTenant();
		const slow = externalApi({ url: upstreamUrl("/slow") }, { timeout_ms: 5000 });
		const tool = await register(node, tenant, slow);
		const started = Date.now();
		const res = await execute(node, tenant, { tool_id: tool.body.id, timeout_ms: 200 });
		expect(res.body).toMatchObject({ status: "failed", error: { type: "timeout" } });
		expect(Date.now() - started).toBeLessThan(SLOW_MS);
	});

	it("fails a streamed 3 MB response over max_response_bytes and stops reading it", async () => {
		const config = { url: upstreamUrl("/big"), max_response_bytes: 65536 };
		const { result } = await registerAndRun(node, newTenant(), config);
		expect(result).toMatchObject({
			status: "failed",
			error: { type: "upstream_error", message: "response exceeds 65536 bytes" }
		});
		await big!.closed;
		expect(big!.completed).toBe(false);
		expect(big!.written).toBeLessThan(BIG_BYTES);
	});

	it("fails a declared 3 MB response over max_response_bytes without reading it", async () => {
		const config = { url: upstreamUrl("/declared-big"), max_response_bytes: 65536 };
		const { result } = await registerAndRun(node, newTenant(), config);
		expect(result).toMatchObject({
			status: "failed",
			error: { type: "upstream_error", message: "response exceeds 65536 bytes" }
		});
	});

	it.each([
		["/fail", "upstream answered 500"],
		["/nowhere", "upstream answered 404"]
	])("reports an upstream error status (%s) as upstream_error", async (path, message) => {
		const { result } = await registerAndRun(node, newTenant(), { url: upstreamUrl(path) });
		expect(result).toMatchObject({ status: "failed", error: { type: "upstream_error", message } });
		expect(result.result).toBeUndefined();
	});

	it("queues the functional validation again on demand, answering 202 with the task", async () => {
		const tenant = newTenant();
		const tool = await register(node, tenant, externalApi({ url: upstreamUrl("/echo") }));
		const queued = await call(node, "POST", `/tools/${tool.body.id}/validate`, tenant);
		expect(queued.status).toBe(202);
		const task = await eventually(async () => {
			const read = await call(node, "GET", `/internal/tasks/${queued.body.task_id}`, tenant);
			expect(read.body.status).toBe("completed");
			return read.body;
		});
		expect(task).toMatchObject({
			type: "tool_validation",
			payload: { tool_id: tool.body.id },
			result: { valid: true }
		});
		expect((await call(node, "GET", `/tools/${tool.body.id}`, tenant)).body.status).toBe("active");
	});

	it("keeps a tool whose allowed host refuses connections active, with its upstream unreachable", async () => {
		const tool = await register(node, newTenant(), externalApi({ url: `http://127.0.0.2:${closedPort}/` }));
		expect(tool.body.health).toMatchObject({
			state: "unreachable",
			error: expect.stringMatching(/ECONNREFUSED/)
		});
	});
});

describe("circuit breaker with the default guards", () => {
	it("fails fast after 10 upstream failures without reaching the upstream, per tenant and tool", async () => {
		const tenant = newTenant();
		const path = `/fail/${tenant}`;
		const failing = await register(node, tenant, externalApi({ url: upstreamUrl(path) }));
		const runFailing = async () => (await execute(node, tenant, { tool_id: failing.body.id })).body;

		for (let i = 0; i < 10; i++) {
			expect(await runFailing()).toMatchObject({
				status: "failed",
				error: { type: "upstream_error", message: "upstream answered 500" }
			});
		}
		expect(hitsOn(path)).toBe(10);

		for (let i = 0; i < 5; i++) {
			const started = Date.now();
			const result = await runFailing();
			expect(result).toMatchObject({ status: "failed", error: { type: "upstream_error" } });
			expect(result.error.message).toMatch(/circuit/i);
			expect(Date.now() - started).toBeLessThan(500);
		}
		expect(hitsOn(path)).toBe(10);

		// The same tenant's other tool is unaffected.
		const { result: ownOther } = await registerAndRun(node, tenant, { url: upstreamUrl("/echo") });
		expect(ownOther.status).toBe("completed");

		// Another tenant: a different tool runs, and even its own tool on the same failing URL is tried.
		const other = newTenant();
		const { result: different } = await registerAndRun(node, other, { url: upstreamUrl("/echo") });
		expect(different).toMatchObject({ status: "completed", result: { status: 200 } });
		const { result: sameUrl } = await registerAndRun(node, other, { url: upstreamUrl(path) });
		expect(sameUrl.error).toEqual({ type: "upstream_error", message: "upstream answered 500" });
		expect(hitsOn(path)).toBe(11);

		// Still open for the first tenant.
		expect((await runFailing()).error.message).toMatch(/circuit/i);
		expect(hitsOn(path)).toBe(11);
	});
});

describe("circuit breaker and bulkhead with tuned guards", () => {
	let tuned: TestNode;
	const RESET_MS = 300;

	beforeAll(async () => {
		tuned = await startNode({
			settings: {
				outboundAllowHosts: ["127.0.0.2"],
				orchestratorUrl,
				guards: {
					errorThresholdPercentage: 50,
					volumeThreshold: 3,
					rollingCountTimeout: 10000,
					resetTimeout: RESET_MS,
					capacity: 2,
					maxGuards: 1000
				}
			}
		});
	});

	afterAll(async () => {
		await tuned?.stop();
	});

	async function openCircuit(tenant: string, path: string) {
		const tool = await register(tuned, tenant, externalApi({ url: upstreamUrl(path) }));
		const run = async () => (await execute(tuned, tenant, { tool_id: tool.body.id })).body;
		for (let i = 0; i < 3; i++) expect((await run()).error.message).toBe("upstream answered 500");
		expect((await run()).error.message).toMatch(/circuit/i);
		expect(hitsOn(path)).toBe(3);
		return run;
	}

	/**
	 * The first call the open circuit lets through once resetTimeout has passed: the calls it refuses
	 * before that reach no upstream, so hit counts stay exact.
	 */
	async function trialAfterReset(run: () => Promise<{ error?: { message: string } }>) {
		return eventually(async () => {
			const result = await run();
			expect(result.error?.message ?? "").not.toMatch(/circuit/i);
			return result;
		});
	}

	it("lets one trial call through after resetTimeout and closes when the upstream recovered", async () => {
		const tenant = newTenant();
		const path = `/flip/${tenant}`;
		const run = await openCircuit(tenant, path);
		healthy.add(path);
		expect((await run()).error.message).toMatch(/circuit/i);
		expect(await trialAfterReset(run)).toMatchObject({
			status: "completed",
			result: { data: { recovered: true } }
		});
		expect(await run()).toMatchObject({ status: "completed" });
		expect(hitsOn(path)).toBe(5);
	});

	it("opens again at once when the trial call fails", async () => {
		const tenant = newTenant();
		const path = `/flip/${tenant}`;
		const run = await openCircuit(tenant, path);
		expect((await trialAfterReset(run)).error).toEqual({
			type: "upstream_error",
			message: "upstream answered 500"
		});
		expect((await run()).error.message).toMatch(/circuit/i);
		expect(hitsOn(path)).toBe(4);
	});

	it("counts timeouts towards opening the circuit", async () => {
		const tenant = newTenant();
		// Long enough for each request to reach the upstream before it is given up, even on a loaded machine.
		const slow = externalApi({ url: upstreamUrl("/slow") }, { timeout_ms: 500 });
		const tool = await register(tuned, tenant, slow);
		const run = async () => (await execute(tuned, tenant, { tool_id: tool.body.id })).body;
		for (let i = 0; i < 3; i++) expect((await run()).error.type).toBe("timeout");
		const open = await run();
		expect(open.error.type).toBe("upstream_error");
		expect(open.error.message).toMatch(/circuit/i);
		expect(hitsOn("/slow")).toBe(3);
	});

	it("does not count refused destinations (tool_error) towards opening the circuit", async () => {
		const tenant = newTenant();
		const tool = await register(tuned, tenant, externalApi({ url: upstreamUrl("/to-victim") }));
		for (let i = 0; i < 6; i++) {
			const res = await execute(tuned, tenant, { tool_id: tool.body.id });
			expect(res.body.error.type).toBe("tool_error");
			expect(res.body.error.message).toMatch(/^outbound address refused/);
		}
	});

	it("refuses a call beyond the tool's capacity at once, without holding up another tenant", async () => {
		const tenant = newTenant();
		const other = newTenant();
		const path = "/delay/2000";
		const slowTool = () => externalApi({ url: upstreamUrl(path) }, { timeout_ms: 10_000 });
		const tool = await register(tuned, tenant, slowTool());
		const otherTool = await register(tuned, other, slowTool());
		const started = Date.now();
		const timed = async (who: string, id: string) => {
			const res = await execute(tuned, who, { tool_id: id });
			return { ...res.body, elapsed: Date.now() - started };
		};
		const first = [timed(tenant, tool.body.id), timed(tenant, tool.body.id)];
		// Both hold the tool's two slots once the upstream has their requests.
		await eventually(async () => expect(hitsOn(path)).toBe(2));
		const later = [timed(tenant, tool.body.id), timed(other, otherTool.body.id)];
		const [a, b, refused, otherTenant] = await Promise.all([...first, ...later]);
		expect([a.status, b.status, otherTenant.status]).toEqual(["completed", "completed", "completed"]);
		expect(refused).toMatchObject({ status: "failed", error: { type: "upstream_error" } });
		expect(refused.error.message).toMatch(/capacity/);
		// Refused at once, long before the calls holding the slots came back.
		expect(refused.elapsed).toBeLessThan(Math.min(a.elapsed, b.elapsed));
		expect(hitsOn(path)).toBe(3);
	});
});
