import type { ServiceBroker } from "moleculer";
import type { QueueDepth, TaskMessage } from "./tasks/task-queue";
import type { StoredTool, ToolSource } from "../types/wire";

type SourceView = Pick<
	ToolSource,
	"id" | "name" | "tenant_id" | "type" | "health" | "tool_count" | "last_refresh_at"
>;
import type { AuditPage } from "./audit/audit-log";

/**
 * Operator commands for `npm run repl` (moleculer-repl `customCommands`). Each one is a function of
 * the broker that answers text, so it can be tested without a terminal; the REPL prints the text.
 */
export interface OpsCommand {
	command: string;
	description: string;
	run(broker: ServiceBroker, args: Record<string, string>): Promise<string>;
}

const asTenant = (tenant: string) => ({ meta: { tenant_id: tenant } });

const table = (header: string[], rows: string[][]): string => {
	const widths = header.map((h, i) => Math.max(h.length, ...rows.map(row => (row[i] ?? "").length)));
	const line = (cells: string[]) =>
		cells
			.map((cell, i) => (cell ?? "").padEnd(widths[i]))
			.join("  ")
			.trimEnd();
	return [line(header), line(widths.map(w => "-".repeat(w))), ...rows.map(line)].join("\n");
};

export const OPS_COMMANDS: OpsCommand[] = [
	{
		command: "tools <tenant>",
		description: "List the tools of a tenant (and the global ones)",
		async run(broker, { tenant }) {
			const rows: string[][] = [];
			let cursor: string | null = null;
			do {
				const page: { items: StoredTool[]; next_cursor: string | null } = await broker.call(
					"registry.list",
					{ limit: 200, ...(cursor ? { cursor } : {}) },
					asTenant(tenant)
				);
				for (const t of page.items)
					rows.push([t.name, t.id, t.tenant_id, t.type, t.status, t.health.state, String(t.version)]);
				cursor = page.next_cursor;
			} while (cursor);
			return table(["name", "id", "tenant", "type", "status", "health", "version"], rows);
		}
	},
	{
		command: "task <tenant> <taskId>",
		description: "Show a queued task",
		async run(broker, { tenant, taskId }) {
			const task: TaskMessage = await broker.call("executor.status", { task_id: taskId }, asTenant(tenant));
			return JSON.stringify(task, null, 2);
		}
	},
	{
		command: "queues",
		description: "Pending tasks and oldest age per tenant queue",
		async run(broker) {
			const depths: QueueDepth[] = await broker.call("executor.queues");
			if (depths.length === 0) return "All queues are empty.";
			return table(
				["queue", "pending", "oldest (s)"],
				depths.map(d => [d.queue, String(d.pending), (d.oldest_age_ms / 1000).toFixed(1)])
			);
		}
	},
	{
		command: "notifier",
		description: "Orchestrator connection and outbox state",
		async run(broker) {
			return JSON.stringify(await broker.call("notifier.state"), null, 2);
		}
	},
	{
		command: "audit <tenant> [action]",
		description: "The latest 50 audit entries of a tenant, newest first (optionally of one action)",
		async run(broker, { tenant, action }) {
			const page: AuditPage = await broker.call(
				"audit.list",
				{ limit: 50, ...(action ? { action } : {}) },
				asTenant(tenant)
			);
			if (page.items.length === 0) return "No audit entries.";
			return table(
				["at", "action", "target", "outcome", "actor"],
				page.items.map(e => [
					e.at,
					e.action,
					e.target,
					e.outcome,
					[e.actor.kind, e.actor.key_id, e.actor.agent_id].filter(Boolean).join(" ")
				])
			);
		}
	},
	{
		command: "disable <tenant> <toolId>",
		description: "Disable a tool: it is no longer discovered or run",
		async run(broker, { tenant, toolId }) {
			const tool: StoredTool = await broker.call(
				"registry.setStatus",
				{ id: toolId, status: "disabled" },
				asTenant(tenant)
			);
			return `${tool.name} (${tool.id}) is ${tool.status}`;
		}
	},
	{
		command: "sources",
		description: "Tool sources of every tenant: health, tool count, last refresh",
		async run(broker) {
			const sources: SourceView[] = await broker.call("sources.overview");
			if (sources.length === 0) return "No tool sources.";
			return table(
				["name", "id", "tenant", "type", "health", "tools", "last refresh"],
				sources.map(s => [
					s.name,
					s.id,
					s.tenant_id,
					s.type,
					s.health.state,
					String(s.tool_count),
					s.last_refresh_at ?? "never"
				])
			);
		}
	},
	{
		command: "source refresh <sourceId>",
		description: "Read a tool source's tools again now",
		async run(broker, { sourceId }) {
			const sources: SourceView[] = await broker.call("sources.overview");
			const source = sources.find(s => s.id === sourceId);
			if (!source) return `No source ${sourceId}.`;
			const refreshed: SourceView & { changes?: Record<string, unknown[]> } = await broker.call(
				"sources.refresh",
				{ id: sourceId },
				asTenant(source.tenant_id)
			);
			const changes = Object.entries(refreshed.changes ?? {})
				.map(([kind, names]) => `${kind} ${names.length}`)
				.join(", ");
			return `${refreshed.name} (${refreshed.id}) is ${refreshed.health.state}, ${refreshed.tool_count} tools${changes ? `; ${changes}` : ""}`;
		}
	},
	{
		command: "enable <tenant> <toolId>",
		description: "Enable a tool disabled by an operator",
		async run(broker, { tenant, toolId }) {
			const tool: StoredTool = await broker.call(
				"registry.setStatus",
				{ id: toolId, status: "active" },
				asTenant(tenant)
			);
			return `${tool.name} (${tool.id}) is ${tool.status}`;
		}
	}
];

/**
 * The commands in moleculer-repl's `customCommands` shape (its typings say `string[]`, but it
 * passes the named arguments of the command as an object).
 */
export const replCommands = OPS_COMMANDS.map(({ command, description, run }) => ({
	command,
	description,
	async action(broker: ServiceBroker, args: unknown) {
		try {
			console.log(await run(broker, args as Record<string, string>));
		} catch (err) {
			console.log(`Error: ${(err as Error).message}`);
		}
	}
}));
