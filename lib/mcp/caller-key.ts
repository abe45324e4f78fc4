import type { CallerMeta } from "../../types/wire";

/**
 * Whose an MCP session or task is: the tenant and agent (null for a credential bound to no agent),
 * whatever credential or session they use.
 */
export const callerKey = (meta: Pick<CallerMeta, "tenant_id" | "agent_id">): string =>
	`${meta.tenant_id}:${Buffer.from(meta.agent_id ?? "").toString("base64url")}`;
