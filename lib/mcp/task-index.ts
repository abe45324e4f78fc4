/**
 * Which tasks an MCP caller created, per tenant and agent, newest first: what `tasks/list` pages
 * through and what binds `tasks/get`, `tasks/result` and `tasks/cancel` to their creator. The tasks
 * themselves live in the tenant's queue; an entry whose task has expired there is dropped when met.
 *
 * Bounded: past `maxPerOwner` entries the oldest go. On Redis the index of an owner who creates no
 * task for `ttlMs` expires with it.
 */
export interface McpTaskIndex {
	add(owner: string, taskId: string): Promise<void>;
	has(owner: string, taskId: string): Promise<boolean>;
	/** Up to `limit` task ids older than `before` (a position from an earlier page), newest first. */
	page(owner: string, before: number | undefined, limit: number): Promise<{ ids: string[]; last?: number }>;
	remove(owner: string, taskIds: string[]): Promise<void>;
}

export interface McpTaskIndexOptions {
	maxPerOwner: number;
	ttlMs: number;
}
