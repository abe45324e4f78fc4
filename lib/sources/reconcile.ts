import canonicalize from "canonicalize";
import { isNameTaken, isStaleVersion } from "../errors";
import type { StoredTool, ToolDefinition, ToolHealth, ToolSource } from "../../types/wire";
import { distinctNames } from "./tool-names";

/** One tool a source offers now, under the key that follows it across refreshes. */
export interface OfferedTool {
	key: string;
	definition: ToolDefinition;
}

/** The registry as a source's reconciliation uses it, acting for the source's tenant. */
export interface SourceRegistry {
	/** The stored tool, or null when it is gone. */
	get(id: string): Promise<StoredTool | null>;
	findByName(name: string): Promise<StoredTool | null>;
	register(definition: ToolDefinition): Promise<StoredTool>;
	/** Rejects with a stale-version error when the tool is no longer at `expectedVersion`. */
	update(id: string, definition: Owned, expectedVersion: number): Promise<StoredTool>;
	setStatus(id: string, status: "active" | "disabled"): Promise<StoredTool>;
	recordHealth(id: string, health: ToolHealth): Promise<StoredTool>;
}

export interface ReconcileSummary {
	added: string[];
	updated: string[];
	disabled: string[];
	enabled: string[];
	/** Tools that could not be written (e.g. a name taken by another tool), with why. */
	skipped: { name: string; reason: string }[];
}

/** The part of a definition a source owns: what an update rewrites and what is compared. */
type Owned = Pick<
	ToolDefinition,
	"name" | "description" | "parameters" | "config" | "output_schema" | "annotations"
>;

const owned = (tool: Owned) =>
	canonicalize({
		name: tool.name,
		description: tool.description,
		parameters: tool.parameters,
		config: tool.config,
		output_schema: tool.output_schema,
		annotations: tool.annotations
	});

/**
 * Writes the source's part of `definition` unless the tool already has it, at the version read: in a
 * cluster every node hears the same list_changed, and the node that loses the race reads the tool
 * again and finds the change made, so one remote change is one new version.
 */
async function writeOwned(
	registry: SourceRegistry,
	current: StoredTool,
	definition: ToolDefinition
): Promise<{ tool: StoredTool; written: boolean }> {
	for (let attempt = 0; ; attempt++) {
		if (owned(current) === owned(definition)) return { tool: current, written: false };
		try {
			const tool = await registry.update(
				current.id,
				{
					name: definition.name,
					description: definition.description,
					parameters: definition.parameters,
					config: definition.config,
					...(definition.output_schema ? { output_schema: definition.output_schema } : {}),
					...(definition.annotations ? { annotations: definition.annotations } : {})
				},
				current.version
			);
			return { tool, written: true };
		} catch (err) {
			const fresh = isStaleVersion(err) && attempt < 3 ? await registry.get(current.id) : null;
			if (!fresh) throw err;
			current = fresh;
		}
	}
}

/**
 * Makes a source's tools match what it offers: new ones registered, changed ones updated (the
 * registry records each change as a new version with its hash), vanished ones disabled (never
 * deleted: agents pinned to them get a clear refusal, and they come back if the remote does),
 * returning ones enabled again. Resolves the new `tools` and `removed` maps of the source.
 */
export async function reconcile(
	source: Pick<ToolSource, "id" | "name" | "tools" | "removed">,
	offered: OfferedTool[],
	registry: SourceRegistry
): Promise<{ summary: ReconcileSummary; tools: Record<string, string>; removed: string[] }> {
	const summary: ReconcileSummary = { added: [], updated: [], disabled: [], enabled: [], skipped: [] };
	const tools = { ...source.tools };
	const removed = new Set(source.removed);
	const names = distinctNames(offered.map(tool => tool.definition.name));
	for (const [index, { key, definition: offeredDefinition }] of offered.entries()) {
		const definition: ToolDefinition = {
			...offeredDefinition,
			name: names[index],
			metadata: { ...offeredDefinition.metadata, source_id: source.id, source: source.name }
		};
		let current = tools[key] ? await registry.get(tools[key]) : null;
		if (!current) {
			try {
				current = await registry.register(definition);
				tools[key] = current.id;
				removed.delete(key);
				summary.added.push(current.name);
				continue;
			} catch (err) {
				if (!isNameTaken(err)) {
					summary.skipped.push({ name: definition.name, reason: (err as Error).message });
					continue;
				}
				// Registered by an earlier refresh that did not get to record it: adopted, never taken from another owner.
				const existing = await registry.findByName(definition.name);
				if (existing?.metadata.source_id !== source.id) {
					summary.skipped.push({ name: definition.name, reason: "another tool already has this name" });
					continue;
				}
				current = existing;
				tools[key] = current.id;
			}
		}
		try {
			const { tool, written } = await writeOwned(registry, current, definition);
			if (written) summary.updated.push(tool.name);
			current = tool;
		} catch (err) {
			summary.skipped.push({ name: definition.name, reason: (err as Error).message });
		}
		if (removed.has(key)) {
			removed.delete(key);
			if (current.status === "disabled") {
				await registry.setStatus(current.id, "active");
				summary.enabled.push(current.name);
			}
		}
	}
	const offeredKeys = new Set(offered.map(tool => tool.key));
	for (const [key, id] of Object.entries(tools)) {
		if (offeredKeys.has(key) || removed.has(key)) continue;
		const gone = await registry.get(id);
		if (!gone) {
			delete tools[key];
			continue;
		}
		removed.add(key);
		if (gone.status !== "disabled") {
			await registry.setStatus(id, "disabled");
			summary.disabled.push(gone.name);
		}
	}
	return { summary, tools, removed: [...removed] };
}
