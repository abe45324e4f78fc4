import type { Context, ServiceSchema } from "moleculer";
import { badRequest } from "../lib/errors";
import { GLOBAL_TENANT, TENANT_ID_PATTERN } from "../lib/tenancy";
import type { CallerMeta, StoredTool } from "../types/wire";

// Services import the tenancy vocabulary from here or from lib/tenancy.ts alike.
export { GLOBAL_TENANT, TENANT_ID_PATTERN };

export interface TenantScopeMethods {
	tenantOf(ctx: Context): string;
	agentOf(ctx: Context): string | null;
	isVisibleTo(tool: StoredTool, tenantId: string): boolean;
}

/** Reads the caller's identity from `ctx.meta` (set by the gateway or a trusted node). */
export function TenantScopeMixin(): Partial<ServiceSchema> {
	return {
		methods: {
			tenantOf(ctx: Context<unknown, CallerMeta>): string {
				const tenant = ctx.meta.tenant_id;
				if (typeof tenant !== "string" || !TENANT_ID_PATTERN.test(tenant))
					throw badRequest("ctx.meta.tenant_id is missing or invalid", "TENANT_REQUIRED");
				return tenant;
			},
			agentOf(ctx: Context<unknown, CallerMeta>): string | null {
				return typeof ctx.meta.agent_id === "string" ? ctx.meta.agent_id : null;
			},
			isVisibleTo(tool: StoredTool, tenantId: string): boolean {
				return tool.tenant_id === tenantId || tool.tenant_id === GLOBAL_TENANT;
			}
		}
	};
}
