import type { ToolContext, ToolEnvironment } from "./tool-contract";

/**
 * The context a tool runs with. A class, not an object literal with a `signal` getter: V8 builds such
 * a literal as a slow dictionary-mode object, which doubled an execution's GC work.
 * The AbortController is made only when a tool reads `signal` or the execution times out: most
 * executions (calculator, datetime) never need one.
 */
export class ExecutionContext implements ToolContext {
	private controller?: AbortController;

	constructor(
		readonly tenant_id: string,
		readonly agent_id: string | null,
		readonly execution_id: string,
		readonly timeout_ms: number,
		readonly env: ToolEnvironment,
		readonly call: ToolContext["call"]
	) {}

	get signal(): AbortSignal {
		return (this.controller ??= new AbortController()).signal;
	}

	/** Fires `signal`, so the tool stops waiting on whatever it waits on. */
	abort(reason: unknown): void {
		(this.controller ??= new AbortController()).abort(reason);
	}
}
