import type { ServerResponse } from "node:http";
import { SERVICE_TOKEN } from "../support/node";
import type { Received } from "../support/upstream";
import {
	SLOW_MS,
	port,
	orchestrator,
	node,
	newTenant,
	newName,
	json,
	redirect,
	call,
	register,
	execute,
	answerOrchestratorWith,
	type Reply,
	useRemoteSetup
} from "../support/remote";

/** Tools that call out, end to end (setup: test/support/remote.ts): RAG tools through the orchestrator stand-in. */

useRemoteSetup();

describe("RAG tools through the orchestrator stand-in", () => {
	const rag = (type: string, extra: Record<string, unknown> = {}) => ({
		name: newName(type),
		description: "Knowledge base",
		type,
		timeout_ms: 2000,
		...extra
	});

	const bodyOf = (received: Received) => JSON.parse(received.body) as Record<string, unknown>;

	it("rag_query POSTs to /api/v1/rag/query with the service token and the tenant", async () => {
		const tenant = newTenant();
		const config = { collection_id: "kb-main", top_k: 4 };
		const tool = await register(node, tenant, rag("rag_query", { config }));
		const parameters = { query: "What is our refund policy?", filters: { lang: "en" } };
		const res = await execute(node, tenant, { tool_id: tool.body.id, parameters });
		expect(res.body).toMatchObject({
			status: "completed",
			result: { answer: "42", sources: [{ id: "doc-1", score: 0.9 }] }
		});
		expect(orchestrator.received).toHaveLength(1);
		const [got] = orchestrator.received;
		expect(got.method).toBe("POST");
		expect(got.url).toBe("/api/v1/rag/query");
		expect(got.headers.authorization).toBe(`Bearer ${SERVICE_TOKEN}`);
		expect(got.headers["x-tenant-id"]).toBe(tenant);
		expect(got.headers["content-type"]).toBe("application/json");
		expect(bodyOf(got)).toEqual({ tenant_id: tenant, ...parameters, collection_id: "kb-main", top_k: 4 });
	});

	it("rag_search POSTs to /api/v1/rag/search and returns the orchestrator's JSON", async () => {
		const tenant = newTenant();
		const answer = { results: [{ id: "doc-7", text: "Refunds within 30 days", score: 0.71 }], total: 1 };
		answerOrchestratorWith(json(200, answer));
		const tool = await register(node, tenant, rag("rag_search", { config: { top_k: 10 } }));
		const parameters = { query: "refund", top_k: 2 };
		const res = await execute(node, tenant, { tool_name: tool.body.name, parameters });
		expect(res.body).toMatchObject({ status: "completed", tool_id: tool.body.id, result: answer });
		const [got] = orchestrator.received;
		expect(got.url).toBe("/api/v1/rag/search");
		expect(got.headers.authorization).toBe(`Bearer ${SERVICE_TOKEN}`);
		expect(got.headers["x-tenant-id"]).toBe(tenant);
		expect(bodyOf(got)).toEqual({ tenant_id: tenant, query: "refund", top_k: 2 });
	});

	it("answers 422 for a tenant_id parameter under the built-in schema, sending nothing", async () => {
		const tenant = newTenant();
		const tool = await register(node, tenant, rag("rag_query"));
		const res = await call(node, "POST", "/internal/execute", tenant, {
			tool_id: tool.body.id,
			parameters: { query: "q", tenant_id: newTenant() }
		});
		expect(res.status).toBe(422);
		expect(orchestrator.received).toEqual([]);
	});

	it("keeps the caller's tenant when a schema lets a tenant_id parameter through", async () => {
		const tenant = newTenant();
		const victim = newTenant();
		const parameters = {
			type: "object",
			properties: { query: { type: "string" }, tenant_id: { type: "string" } },
			required: ["query"]
		};
		const tool = await register(node, tenant, rag("rag_search", { parameters }));
		const res = await execute(node, tenant, {
			tool_id: tool.body.id,
			parameters: { query: "q", tenant_id: victim }
		});
		expect(res.body.status).toBe("completed");
		const [got] = orchestrator.received;
		expect(bodyOf(got)).toEqual({ tenant_id: tenant, query: "q" });
		expect(got.headers["x-tenant-id"]).toBe(tenant);
		expect(JSON.stringify(got)).not.toContain(victim);
	});

	it("sends the executing tenant, not '*', for a global RAG tool", async () => {
		const tool = await register(node, "*", rag("rag_query"));
		const tenant = newTenant();
		const res = await execute(node, tenant, { tool_id: tool.body.id, parameters: { query: "q" } });
		expect(res.body.status).toBe("completed");
		const [got] = orchestrator.received;
		expect(got.headers["x-tenant-id"]).toBe(tenant);
		expect(bodyOf(got).tenant_id).toBe(tenant);
	});

	it.each([
		["a 503", json(503, { error: "unavailable" }), "orchestrator answered 503"],
		["invalid JSON", ((res: ServerResponse) => res.end("<html>")) as Reply, "with invalid JSON"]
	])("reports %s from the orchestrator as upstream_error", async (_case, reply, message) => {
		answerOrchestratorWith(reply);
		const tenant = newTenant();
		const tool = await register(node, tenant, rag("rag_query"));
		const res = await execute(node, tenant, { tool_id: tool.body.id, parameters: { query: "q" } });
		expect(res.body).toMatchObject({ status: "failed", error: { type: "upstream_error" } });
		expect(res.body.error.message).toContain(message);
		expect(orchestrator.received).toHaveLength(1);
	});

	it("does not follow an orchestrator redirect, so the service token stays put", async () => {
		answerOrchestratorWith(res => redirect(res, 307, `http://127.0.0.1:${port}/steal`));
		const tenant = newTenant();
		const tool = await register(node, tenant, rag("rag_search"));
		const res = await execute(node, tenant, { tool_id: tool.body.id, parameters: { query: "q" } });
		expect(res.body).toMatchObject({ status: "failed", error: { type: "upstream_error" } });
		expect(res.body.error.message).toMatch(/orchestrator/);
	});

	it("fails a slow orchestrator with timeout at the tool's timeout_ms", async () => {
		answerOrchestratorWith(res => {
			const timer = setTimeout(() => json(200, { late: true })(res), SLOW_MS);
			res.on("close", () => clearTimeout(timer));
		});
		const tenant = newTenant();
		const tool = await register(node, tenant, rag("rag_query", { timeout_ms: 300 }));
		const started = Date.now();
		const res = await execute(node, tenant, { tool_id: tool.body.id, parameters: { query: "q" } });
		expect(res.body).toMatchObject({ status: "failed", error: { type: "timeout" } });
		expect(Date.now() - started).toBeLessThan(SLOW_MS);
	});

	it.each([
		"http://127.0.0.1:PORT/api",
		"@127.0.0.1:PORT/api",
		"api/v1/rag/query",
		"/api?x=1",
		"/api/v1/rag/../../admin",
		"/../admin"
	])("refuses the endpoint %s at registration, so the token cannot go elsewhere", async endpoint => {
		const tenant = newTenant();
		const definition = rag("rag_query", { config: { endpoint: endpoint.replace("PORT", String(port)) } });
		const res = await call(node, "POST", "/tools", tenant, definition);
		expect(res.status).toBe(422);
		expect(res.body.data.map((problem: { field: string }) => problem.field)).toContain("config.endpoint");
	});
});
