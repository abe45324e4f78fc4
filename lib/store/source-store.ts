import type { ToolSource } from "../../types/wire";

/** Persistence of tool sources; a source's name is unique within its tenant. */
export interface SourceStore {
	/** Stores a new source; throws CONFLICT when its name is already used in its tenant. */
	create(source: ToolSource): Promise<ToolSource>;
	get(id: string): Promise<ToolSource | null>;
	/** Sources of one tenant, by name. */
	list(tenantId: string): Promise<ToolSource[]>;
	/** Ids of every source of every tenant, for periodic refreshes. */
	ids(): Promise<string[]>;
	/** Replaces the source by `change(current)` atomically; null when it is gone. */
	update(id: string, change: (current: ToolSource) => ToolSource): Promise<ToolSource | null>;
	remove(id: string): Promise<ToolSource | null>;
}

export const sourceNameTaken = (name: string) => `A source named '${name}' already exists`;
