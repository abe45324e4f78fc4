import { eventually } from "../support/eventually";
import type { Context } from "moleculer";
import { http, type TestNode } from "../support/node";
import { calculatorTool } from "../support/definitions";
import { newTenant, SLOW, expectEnvelope, fieldsOf, useLocalNode } from "../support/local-execution";

/** Execution of local tools over HTTP (setup: test/support/local-execution.ts): resolving the tool, agent permissions, timeouts, usage stats, disabled tools and the executor.execute action. */

describe("execution of local tools over HTTP", () => {
	const local = useLocalNode();
	const { execute, calculate, register, stats, keyFor } = local;
	let node: TestNode;
	let globalCalculatorId: string;
	beforeAll(() => ({ node, globalCalculatorId } = local));

	describe("resolving the tool", () => {
		it("runs a tool by tool_id and by tool_name", async () => {
			const tenant = newTenant();
			const tool = await register(tenant, calculatorTool("my_calc"));
			const byId = await execute(tenant, { tool_id: tool.id, parameters: { expression: "3*3" } });
			expect(byId.status).toBe(200);
			expectEnvelope(byId.body, "completed");
			expect(byId.body).toMatchObject({ tool_id: tool.id, tool_name: "my_calc", result: { value: 9 } });
			const byName = await execute(tenant, { tool_name: "my_calc", parameters: { expression: "3*4" } });
			expect(byName.body).toMatchObject({ tool_id: tool.id, tool_name: "my_calc", result: { value: 12 } });
			const globalById = await execute(tenant, {
				tool_id: globalCalculatorId,
				parameters: { expression: "1" }
			});
			expect(globalById.body).toMatchObject({ tool_id: globalCalculatorId, status: "completed" });
		});

		it("lets a tenant tool shadow a global one of the same name for that tenant only", async () => {
			const owner = newTenant();
			const other = newTenant();
			const mine = await register(owner, calculatorTool("calculator", { description: "Mine" }));
			expect(mine.id).not.toBe(globalCalculatorId);
			const shadowed = await calculate(owner, "2+3");
			expect(shadowed.status).toBe(200);
			expect(shadowed.body).toMatchObject({
				tool_id: mine.id,
				tool_name: "calculator",
				result: { value: 5 }
			});
			const unaffected = await calculate(other, "2+3");
			expect(unaffected.body).toMatchObject({ tool_id: globalCalculatorId, result: { value: 5 } });
		});

		it.each([
			["an unknown tool_id", { tool_id: "01a211ad-0000-7000-8000-000000000000" }],
			["an unknown tool_name", { tool_name: "no_such_tool" }]
		])("answers 404 NOT_FOUND for %s", async (_case, target) => {
			const res = await execute(newTenant(), { ...target, parameters: {} });
			expect(res.status).toBe(404);
			expect(res.body).toMatchObject({ code: 404, type: "NOT_FOUND" });
		});

		const one = { tool_name: "calculator", parameters: { expression: "1" } };

		it.each([
			["neither tool_id nor tool_name", { parameters: { expression: "1" } }, "tool_id"],
			["an unknown request field", { ...one, priority: 5 }, "priority"],
			["parameters as a string", { tool_name: "calculator", parameters: "1+1" }, "parameters"],
			["parameters as an array", { tool_name: "calculator", parameters: ["1+1"] }, "parameters"],
			["parameters as a number", { tool_name: "calculator", parameters: 42 }, "parameters"],
			["timeout_ms of 0", { ...one, timeout_ms: 0 }, "timeout_ms"],
			["a fractional timeout_ms", { ...one, timeout_ms: 1.5 }, "timeout_ms"],
			["timeout_ms as a string", { ...one, timeout_ms: "100" }, "timeout_ms"],
			["an empty execution_id", { ...one, execution_id: "" }, "execution_id"]
		])("answers 422 VALIDATION_ERROR for %s", async (_case, body, mentioned) => {
			const res = await execute(newTenant(), body);
			expect(res.status).toBe(422);
			expect(res.body).toMatchObject({ code: 422, type: "VALIDATION_ERROR" });
			expect(Array.isArray(res.body.data)).toBe(true);
			expect(JSON.stringify(res.body.data)).toContain(`"${mentioned}"`);
		});

		it.each([
			["a missing required parameter", {}, "parameters.expression"],
			["a parameter of the wrong type", { expression: 5 }, "parameters.expression"],
			["an extra parameter", { expression: "1+1", precision: 3 }, "parameters.precision"]
		])("answers 422 for %s, naming it, and does not run the tool", async (_case, parameters, field) => {
			const tenant = newTenant();
			const before = await stats(tenant, globalCalculatorId);
			expect(before.status).toBe(200);
			expect(before.body.calls).toBe(0);
			const res = await execute(tenant, { tool_id: globalCalculatorId, parameters });
			expect(res.status).toBe(422);
			expect(res.body).toMatchObject({ code: 422, type: "VALIDATION_ERROR" });
			expect(fieldsOf(res)).toContain(field);
			expect((await stats(tenant, globalCalculatorId)).body.calls).toBe(0);
			// The same tenant's stats do count a call that ran.
			expect((await calculate(tenant, "1+1")).body.status).toBe("completed");
			expect((await stats(tenant, globalCalculatorId)).body.calls).toBe(1);
		});
	});

	describe("agent permissions", () => {
		const restricted = calculatorTool("for_agent_a", { permissions: { agents: ["agent-a"] } });
		const run = (id: string) => ({ tool_id: id, parameters: { expression: "6*7" } });

		it("runs a restricted tool for a permitted agent and reports it as missing to any other", async () => {
			const tenant = newTenant();
			const tool = await register(tenant, restricted);
			const allowed = await execute(tenant, run(tool.id), { agent: "agent-a" });
			expect(allowed.status).toBe(200);
			expectEnvelope(allowed.body, "completed");
			expect(allowed.body.result).toEqual({ value: 42 });

			// What a tenant that cannot see the tool at all gets for the same id.
			const missing = await execute(newTenant(), run(tool.id), { agent: "agent-a" });
			expect(missing.status).toBe(404);
			expect(missing.body).toMatchObject({ code: 404, type: "NOT_FOUND" });
			for (const agent of ["agent-b", undefined]) {
				const refused = await execute(tenant, run(tool.id), { agent });
				expect(refused.status).toBe(404);
				expect(refused.body).toEqual(missing.body);
			}
			const byName = await execute(
				tenant,
				{ tool_name: "for_agent_a", parameters: { expression: "1" } },
				{
					agent: "agent-b"
				}
			);
			const missingByName = await execute(tenant, { tool_name: "no_such_tool", parameters: {} });
			expect(byName.status).toBe(404);
			expect({ ...byName.body, data: undefined }).toEqual({ ...missingByName.body, data: undefined });
		});

		it("applies the agent an API key is bound to", async () => {
			const tenant = newTenant();
			const tool = await register(tenant, restricted);
			const scopes = ["tools:execute", "tools:read", "tools:write"];
			const agentB = await keyFor(tenant, scopes, "agent-b");
			const refused = await execute(undefined, run(tool.id), { token: agentB });
			expect(refused.status).toBe(404);
			expect(refused.body).toMatchObject({ code: 404, type: "NOT_FOUND" });
			const agentA = await keyFor(tenant, scopes, "agent-a");
			const allowed = await execute(undefined, run(tool.id), { token: agentA });
			expect(allowed.status).toBe(200);
			expect(allowed.body.result).toEqual({ value: 42 });
		});

		it("answers 403 to a key without the tools:execute scope", async () => {
			const tenant = newTenant();
			const reader = await keyFor(tenant, ["tools:read", "tools:write"]);
			const res = await execute(
				undefined,
				{ tool_name: "calculator", parameters: { expression: "1" } },
				{
					token: reader
				}
			);
			expect(res.status).toBe(403);
			expect(res.body).toMatchObject({ code: 403, type: "FORBIDDEN" });
		});

		it("answers 404 for another tenant's tool, by id and by name", async () => {
			const owner = newTenant();
			const tool = await register(owner, calculatorTool("owners_calc"));
			const intruder = newTenant();
			const byId = await execute(intruder, { tool_id: tool.id, parameters: { expression: "1" } });
			expect(byId.status).toBe(404);
			expect(byId.body).toMatchObject({ code: 404, type: "NOT_FOUND" });
			const byName = await execute(intruder, { tool_name: "owners_calc", parameters: { expression: "1" } });
			expect(byName.status).toBe(404);
			expect((await stats(owner, tool.id)).body.calls).toBe(0);
		});
	});

	describe("timeouts", () => {
		it("applies a request timeout_ms shorter than the tool's", async () => {
			const started = Date.now();
			const res = await calculate(newTenant(), SLOW, { timeout_ms: 300 });
			const elapsed = Date.now() - started;
			expect(res.status).toBe(200);
			expectEnvelope(res.body, "failed");
			expect(res.body.error.type).toBe("timeout");
			expect(res.body.execution_time_ms).toBeGreaterThanOrEqual(290);
			expect(elapsed).toBeLessThan(1500);
		});

		it("never extends beyond the tool's own timeout_ms", async () => {
			const tenant = newTenant();
			const tool = await register(tenant, calculatorTool("quick_calc", { timeout_ms: 200 }));
			const started = Date.now();
			const res = await execute(tenant, {
				tool_id: tool.id,
				parameters: { expression: SLOW },
				timeout_ms: 5000
			});
			const elapsed = Date.now() - started;
			expect(res.status).toBe(200);
			expectEnvelope(res.body, "failed");
			expect(res.body.error.type).toBe("timeout");
			expect(res.body.execution_time_ms).toBeGreaterThanOrEqual(190);
			expect(res.body.execution_time_ms).toBeLessThan(1000);
			expect(elapsed).toBeLessThan(1500);
		});
	});

	describe("usage stats", () => {
		it("counts completed and failed executions by failure type, with latencies", async () => {
			const tenant = newTenant();
			const tool = await register(tenant, calculatorTool("counted"));
			const run = (expression: string, timeout_ms?: number) =>
				execute(tenant, { tool_id: tool.id, parameters: { expression }, timeout_ms });
			const outcomes = [];
			for (const expression of ["1+1", "2*3", "sqrt(9)", "x", "cos.constructor", SLOW]) {
				const res = await run(expression, expression === SLOW ? 100 : undefined);
				outcomes.push(res.body.error?.type ?? res.body.status);
			}
			expect(outcomes).toEqual([
				"completed",
				"completed",
				"completed",
				"tool_error",
				"tool_error",
				"timeout"
			]);
			const res = await stats(tenant, tool.id);
			expect(res.status).toBe(200);
			expect(res.body).toMatchObject({
				tool_id: tool.id,
				tenant_id: tenant,
				calls: 6,
				completed: 3,
				failed: 3,
				failures: { tool_error: 2, timeout: 1, upstream_error: 0 }
			});
			const latency = res.body.latency_ms;
			expect(Object.keys(latency).sort()).toEqual(["avg", "max", "p50", "p95", "p99"]);
			for (const value of Object.values(latency)) {
				expect(typeof value).toBe("number");
				expect(value).toBeGreaterThanOrEqual(0);
			}
			expect(latency.max).toBeGreaterThanOrEqual(95);
			expect(latency.p99).toBeLessThanOrEqual(latency.max);
		});

		it("answers 404 to another tenant asking for a tenant tool's stats", async () => {
			const owner = newTenant();
			const tool = await register(owner, calculatorTool("private_calc"));
			await execute(owner, { tool_id: tool.id, parameters: { expression: "1" } });
			const res = await stats(newTenant(), tool.id);
			expect(res.status).toBe(404);
			expect(res.body).toMatchObject({ code: 404, type: "NOT_FOUND" });
			expect((await stats(owner, "01a211ad-0000-7000-8000-000000000000")).status).toBe(404);
		});

		it("keeps a global tool's stats per tenant", async () => {
			const a = newTenant();
			const b = newTenant();
			for (const expression of ["1", "2", "x"]) await calculate(a, expression);
			await calculate(b, "3");
			const statsA = await stats(a, globalCalculatorId);
			expect(statsA.body).toMatchObject({ tenant_id: a, calls: 3, completed: 2, failed: 1 });
			const statsB = await stats(b, globalCalculatorId);
			expect(statsB.body).toMatchObject({ tenant_id: b, calls: 1, completed: 1, failed: 0 });
		});
	});

	describe("disabled tools", () => {
		/** Waits until the tool named `name` passes `check`, and returns it. */
		const waitForTool = (tenant: string, name: string, check: (tool: any) => boolean) =>
			eventually(async () => {
				const list = await http(node.url, "GET", "/api/v1/tools?type=moleculer_action", { tenant });
				const tool = list.body.items.find((t: { name: string }) => t.name === name);
				expect(tool && check(tool)).toBe(true);
				return tool;
			});

		it("refuses to run a tool whose action no node offers any more (status disabled)", async () => {
			// The one public way to get a disabled tool: an action that declared `tool` goes away.
			const tenant = newTenant();
			const name = `echo_${process.pid}`;
			const service = node.broker.createService({
				name: `echoer${process.pid}`,
				actions: {
					echo: {
						tool: { name, description: "Echoes its text", parameters: { type: "object", properties: {} } },
						handler(ctx: Context<Record<string, unknown>>) {
							return { echoed: ctx.params.text ?? null };
						}
					}
				}
			} as any);
			await node.broker.waitForServices(`echoer${process.pid}`);
			const active = await waitForTool(tenant, name, tool => tool.status === "active");
			const ran = await execute(tenant, { tool_id: active.id, parameters: { text: "hi" } });
			expect(ran.status).toBe(200);
			expect(ran.body.result).toEqual({ echoed: "hi" });

			await node.broker.destroyService(service);
			await waitForTool(tenant, name, tool => tool.status === "disabled");
			const refused = await execute(tenant, { tool_id: active.id, parameters: { text: "hi" } });
			expect(refused.status).toBe(409);
			expect(refused.body).toMatchObject({ code: 409, type: "CONFLICT", data: { status: "disabled" } });
			const byName = await execute(tenant, { tool_name: name, parameters: {} });
			expect(byName.status).toBe(409);
		});
	});

	describe("the executor.execute action", () => {
		it("answers with the same envelope as REST, identity from ctx.meta", async () => {
			const tenant = newTenant();
			const tool = await register(tenant, {
				name: "meta_calc",
				description: "Evaluates an arithmetic expression",
				type: "calculator",
				permissions: { agents: ["agent-a"] }
			});
			const call = (params: Record<string, unknown>, agentId?: string) =>
				node.broker.call<any, any>("executor.execute", params, {
					meta: { tenant_id: tenant, agent_id: agentId }
				});
			const expression = (text: string) => ({ tool_id: tool.id, parameters: { expression: text } });
			const done = await call({ ...expression("2+2"), execution_id: "via-action" }, "agent-a");
			expectEnvelope(done, "completed");
			expect(done).toMatchObject({
				execution_id: "via-action",
				tool_id: tool.id,
				tool_name: "meta_calc",
				result: { value: 4 }
			});
			const failed = await call({ tool_name: "calculator", parameters: { expression: "import({})" } });
			expectEnvelope(failed, "failed");
			expect(failed).toMatchObject({ tool_id: globalCalculatorId, error: { type: "tool_error" } });
			const rest = await calculate(tenant, "import({})");
			expect(Object.keys(rest.body).sort()).toEqual(Object.keys(failed).sort());

			await expect(call(expression("1"), "agent-b")).rejects.toMatchObject({
				code: 404,
				type: "NOT_FOUND"
			});
			await expect(call({ tool_id: tool.id, parameters: {} }, "agent-a")).rejects.toMatchObject({
				code: 422,
				type: "VALIDATION_ERROR"
			});
			await expect(call({ ...expression("1"), extra: true }, "agent-a")).rejects.toMatchObject({
				code: 422
			});
			const anonymous = node.broker.call("executor.execute", expression("1"), { meta: {} });
			await expect(anonymous).rejects.toMatchObject({ code: 400, type: "TENANT_REQUIRED" });
		});
	});
});
