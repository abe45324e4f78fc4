import type { McpTaskIndex, McpTaskIndexOptions } from "./task-index";

/** The index of one gateway process, for a deployment without Redis (a single node). */
export class MemoryMcpTaskIndex implements McpTaskIndex {
	/** Per owner, oldest first, each with its position (increasing across all owners). */
	private readonly entries = new Map<string, { position: number; taskId: string }[]>();
	private position = 0;

	constructor(private readonly options: Pick<McpTaskIndexOptions, "maxPerOwner">) {}

	async add(owner: string, taskId: string): Promise<void> {
		const list = this.entries.get(owner) ?? [];
		list.push({ position: ++this.position, taskId });
		if (list.length > this.options.maxPerOwner) list.splice(0, list.length - this.options.maxPerOwner);
		this.entries.set(owner, list);
	}

	async has(owner: string, taskId: string): Promise<boolean> {
		return (this.entries.get(owner) ?? []).some(entry => entry.taskId === taskId);
	}

	async page(owner: string, before: number | undefined, limit: number) {
		const older = (this.entries.get(owner) ?? []).filter(e => before === undefined || e.position < before);
		const page = older.slice(-limit).reverse();
		return {
			ids: page.map(entry => entry.taskId),
			...(page.length === limit ? { last: page[page.length - 1].position } : {})
		};
	}

	async remove(owner: string, taskIds: string[]): Promise<void> {
		const list = this.entries.get(owner);
		if (!list) return;
		const kept = list.filter(entry => !taskIds.includes(entry.taskId));
		if (kept.length) this.entries.set(owner, kept);
		else this.entries.delete(owner);
	}
}
