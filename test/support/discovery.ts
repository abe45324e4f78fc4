import { createHash } from "crypto";
import canonicalize from "canonicalize";
import { eventually } from "./eventually";
import { http, type HttpResult, type TestNode } from "./node";

/** What the discovery suites share: REST helpers, the hash a client recomputes, the vectors' readiness. */

export const SERVICES = ["api", "registry", "validator"];
export const FORMATS = ["native", "openai", "anthropic", "mcp"] as const;
export type Format = (typeof FORMATS)[number];

let tenantCounter = 0;
export const newTenant = (label = "discovery") => `${label}-${process.pid}-${++tenantCounter}`;

const agentHeaders = (agent?: string) => (agent ? { "x-agent-id": agent } : undefined);

export function discover(
	node: TestNode,
	tenant: string,
	body: Record<string, unknown>,
	agent?: string
): Promise<HttpResult> {
	return http(node.url, "POST", "/api/v1/registry/discover", { tenant, body, headers: agentHeaders(agent) });
}

export async function register(
	node: TestNode,
	tenant: string,
	definition: Record<string, unknown>
): Promise<any> {
	const res = await http(node.url, "POST", "/api/v1/tools", { tenant, body: definition });
	if (res.status !== 201)
		throw new Error(`register ${String(definition.name)}: ${res.status} ${JSON.stringify(res.body)}`);
	return res.body;
}

/** The tool names of a discovery answer in any format, best first. */
export function namesIn(format: Format, body: any): string[] {
	if (format === "native") return body.items.map((item: any) => item.tool.name);
	if (format === "openai") return body.tools.map((tool: any) => tool.function.name);
	return body.tools.map((tool: any) => tool.name);
}

export async function discoveredNames(
	node: TestNode,
	tenant: string,
	body: Record<string, unknown>,
	agent?: string
) {
	const res = await discover(node, tenant, body, agent);
	expect(res.status).toBe(200);
	return namesIn((body.format as Format | undefined) ?? "native", res.body);
}

/** The definition hash recomputed by a client from a read: RFC 8785 canonical JSON, SHA-256. */
export const expectedHash = (tool: any) =>
	"sha256:" +
	createHash("sha256")
		.update(
			canonicalize({
				name: tool.name,
				description: tool.description,
				parameters: tool.parameters,
				config: tool.config,
				output_schema: tool.output_schema,
				annotations: tool.annotations
			})!
		)
		.digest("hex");

export const datetimeTool = (name: string, description: string, extra: Record<string, unknown> = {}) => ({
	name,
	description,
	type: "datetime",
	...extra
});

/** Resolves once every tool the registry has indexed has its vector. */
export async function vectorsReady(node: TestNode): Promise<void> {
	const registry = node.broker.getLocalService("registry") as unknown as {
		discovery: { pendingVectors(): Promise<number> };
		toolVectors: { pending: number } | null;
	};
	await eventually(
		async () => {
			expect(registry.toolVectors?.pending).toBe(0);
			expect(await registry.discovery.pendingVectors()).toBe(0);
		},
		240_000,
		200
	);
}
