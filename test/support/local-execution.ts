import { calculatorPool } from "../../tools/calculator";
import { eventually, until } from "./eventually";
import { http, startNode, type HttpResult, type TestNode } from "./node";

/** What the execute-local suites share: the envelope check and a node with REST helpers bound to it. */

let tenantCounter = 0;
export const newTenant = () => `exec-${process.pid}-${++tenantCounter}`;

export const ENVELOPE_KEYS = ["execution_id", "execution_time_ms", "status", "tool_id", "tool_name"];
/** The slowest expression we know of: mathjs loops a billion times, so only a time limit ends it. */
export const SLOW = "combinations(2e9, 1e9)";

/** Checks the documented execution result: exactly its keys, `result` or `error` by status. */
export function expectEnvelope(body: any, status: "completed" | "failed") {
	const outcome = status === "completed" ? "result" : "error";
	expect(Object.keys(body).sort()).toEqual([...ENVELOPE_KEYS, outcome].sort());
	expect(body.status).toBe(status);
	expect(typeof body.execution_id).toBe("string");
	expect(body.execution_id.length).toBeGreaterThan(0);
	expect(typeof body.tool_id).toBe("string");
	expect(typeof body.tool_name).toBe("string");
	expect(typeof body.execution_time_ms).toBe("number");
	expect(body.execution_time_ms).toBeGreaterThanOrEqual(0);
	if (status === "failed") {
		expect(Object.keys(body.error).sort()).toEqual(["message", "type"]);
		expect(typeof body.error.message).toBe("string");
		expect(body.error.message.length).toBeGreaterThan(0);
	}
}

export interface CallerOptions {
	agent?: string;
	token?: string;
}

/** Fields named by a 422 body's `data` problems. */
export const fieldsOf = (res: HttpResult): string[] =>
	(res.body.data as { field: string }[]).map(problem => problem.field);

/**
 * Starts a node for the suite (calculator threads warmed up) and stops it after; the helpers call
 * whichever node is running, and `node` and the global tools' ids are set once it is ready.
 */
export function useLocalNode() {
	const local = {
		node: undefined as unknown as TestNode,
		globalCalculatorId: "",
		globalDatetimeId: "",
		execute: (tenant: string | undefined, body: unknown, options: CallerOptions = {}) =>
			http(local.node.url, "POST", "/api/v1/internal/execute", {
				tenant,
				body,
				token: options.token,
				headers: options.agent ? { "x-agent-id": options.agent } : undefined
			}),
		calculate: (tenant: string, expression: string, extra: Record<string, unknown> = {}) =>
			local.execute(tenant, { tool_name: "calculator", parameters: { expression }, ...extra }),
		register: async (tenant: string, definition: Record<string, unknown>) => {
			const res = await http(local.node.url, "POST", "/api/v1/tools", { tenant, body: definition });
			expect(res.status).toBe(201);
			return res.body as { id: string; name: string; tenant_id: string };
		},
		stats: (tenant: string, id: string) =>
			http(local.node.url, "GET", `/api/v1/tools/${id}/stats`, { tenant }),
		keyFor: async (tenant: string, scopes: string[], agentId?: string) => {
			const res = await http(local.node.url, "POST", "/api/v1/keys", {
				tenant,
				body: { tenant_id: tenant, scopes, ...(agentId ? { agent_id: agentId } : {}) }
			});
			expect(res.status).toBe(201);
			return res.body.api_key as string;
		}
	};

	beforeAll(async () => {
		local.node = await startNode();
		const tools = await http(local.node.url, "GET", "/api/v1/tools", { tenant: newTenant() });
		const items = tools.body.items as { id: string; name: string; tenant_id: string }[];
		const global = (name: string) => items.find(t => t.name === name && t.tenant_id === "*")!.id;
		local.globalCalculatorId = global("calculator");
		local.globalDatetimeId = global("datetime");
		// Starts the calculator's worker threads, so timings below measure evaluations, not thread start-up.
		// On a busy machine a first call may outlast its timeout while the threads start: wait until they answer.
		await eventually(async () => {
			const warm = await Promise.all([1, 2, 3].map(() => local.calculate("warm-up", "1+1")));
			expect(warm.map(res => res.body.result?.value)).toEqual([2, 2, 2]);
		}, 60000);
		await until("every calculator thread to load mathjs", () => calculatorPool.allLoaded(), 60000);
	}, 90000);

	afterAll(() => local.node?.stop());
	return local;
}
