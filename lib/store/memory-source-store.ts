import type { ToolSource } from "../../types/wire";
import { conflict } from "../errors";
import { sourceNameTaken, type SourceStore } from "./source-store";

export class MemorySourceStore implements SourceStore {
	private readonly sources = new Map<string, ToolSource>();

	async create(source: ToolSource): Promise<ToolSource> {
		const taken = [...this.sources.values()].some(
			s => s.tenant_id === source.tenant_id && s.name === source.name
		);
		if (taken) throw conflict(sourceNameTaken(source.name), { name: source.name });
		this.sources.set(source.id, structuredClone(source));
		return source;
	}

	async get(id: string): Promise<ToolSource | null> {
		const source = this.sources.get(id);
		return source ? structuredClone(source) : null;
	}

	async list(tenantId: string): Promise<ToolSource[]> {
		return [...this.sources.values()]
			.filter(source => source.tenant_id === tenantId)
			.sort((a, b) => a.name.localeCompare(b.name))
			.map(source => structuredClone(source));
	}

	async ids(): Promise<string[]> {
		return [...this.sources.keys()];
	}

	async update(id: string, change: (current: ToolSource) => ToolSource): Promise<ToolSource | null> {
		const current = this.sources.get(id);
		if (!current) return null;
		const next = change(structuredClone(current));
		this.sources.set(id, structuredClone(next));
		return next;
	}

	async remove(id: string): Promise<ToolSource | null> {
		const current = this.sources.get(id) ?? null;
		this.sources.delete(id);
		return current;
	}
}
