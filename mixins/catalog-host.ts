import type { Context, ServiceBroker } from "moleculer";
import type { AuditAction } from "../lib/audit/audit-log";
import type { AuditHook, ToolStore } from "../lib/store/tool-store";
import type { JsonObject, StoredTool, ToolDefinition, ValidationReport } from "../types/wire";

/**
 * What the registry offers the mixins it is made of (tool-versions, tool-health, global-tools):
 * its store and how it finds, checks, completes, shows and audits a tool.
 */
export interface CatalogHost {
	store: ToolStore;
	tenantOf(ctx: Context): string;
	/** A tool the caller's tenant may read (its own or a global one); another tenant's is not found. */
	findVisible(tenantId: string, id: string): Promise<StoredTool>;
	/** A tool the caller's tenant may change: its own. */
	findWritable(tenantId: string, id: string): Promise<StoredTool>;
	/** The validator's report on a definition; a blank description a stored tool already had is tolerated. */
	checkDefinition(
		caller: Context | ServiceBroker,
		body: JsonObject,
		current?: StoredTool
	): Promise<ValidationReport>;
	/** The report of a definition about to be stored; throws when it is invalid or its tenant refuses its findings. */
	admitDefinition(
		ctx: Context,
		tenantId: string,
		body: JsonObject,
		current?: StoredTool
	): Promise<ValidationReport>;
	/** The definition with its type's defaults and its `definition_hash`. */
	withDefaults(definition: ToolDefinition): Pick<StoredTool, keyof ToolDefinition | "definition_hash">;
	/** The tool as callers see it: secrets masked. */
	present(tool: StoredTool): StoredTool;
	/** Tells every node a tool changed (`tool.updated`, the tool as callers see it) and returns what it told. */
	announceUpdated(caller: Pick<Context, "broadcast">, tool: StoredTool): StoredTool;
	/** The audit entry of a write to one tool, appended by the store in the same step. */
	audited(ctx: Context, action: AuditAction, outcome?: string): AuditHook;
}
