import type { Context, ServiceSchema } from "moleculer";
import { badRequest } from "../lib/errors";
import type { CallerMeta, StoredTool } from "../types/wire";

/** Tenant of global tools: visible to every tenant, writable only when acting for `*`. */
export const GLOBAL_TENANT = "*";

export const TENANT_ID_PATTERN = /^(\*|[A-Za-z0-9][A-Za-z0-9_.-]{0,127})$/;

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
