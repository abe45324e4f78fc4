import type { TaskStore } from "@modelcontextprotocol/sdk/experimental/tasks/interfaces.js";
import {
	ErrorCode,
	McpError,
	type CallToolRequest,
	type Request,
	type Result,
	type Task
} from "@modelcontextprotocol/sdk/types.js";
import { isConflict, isNotFound } from "../errors";
import type { TaskMessage } from "../tasks/task-queue";
import type { CallerMeta, JsonObject } from "../../types/wire";
import { errorResult, protocolError, rpcError, successResult } from "./results";
import { callerKey } from "./caller-key";
import type { McpTaskIndex } from "./task-index";

/** The queue operations MCP Tasks need, acting for the caller as REST does. */
export interface McpTaskBackend {
	/** Queues a tool call as a `tool_execution` task of the caller's tenant; resolves the stored task. */
	submitTask(
		meta: CallerMeta,
		call: { name: string; parameters: JsonObject; expectedHash?: string; sessionId?: string }
	): Promise<TaskMessage>;
	/** The caller's task; a 404 for an unknown task or another tenant's. */
	getTask(meta: CallerMeta, taskId: string): Promise<TaskMessage>;
	/** Cancels a pending task; a 409 (with `data.status`) when it is not pending any more. */
	cancelTask(meta: CallerMeta, taskId: string): Promise<TaskMessage>;
}

export interface McpTaskOptions {
	/** What `pollInterval` suggests, and how often a waiting `tasks/result` looks. */
	pollIntervalMs: number;
	/** Tasks per `tasks/list` page. */
	pageSize: number;
	/** How long the queue keeps a finished task: a task's `ttl` ends that long after it finished. */
	retentionMs: number;
}

const STATUS: Record<TaskMessage["status"], Task["status"]> = {
	pending: "working",
	processing: "working",
	completed: "completed",
	failed: "failed",
	cancelled: "cancelled"
};

const CANCELLED = { type: "cancelled", message: "The task was cancelled before it ran" };

const TERMINAL = new Set(["completed", "failed", "cancelled"]);

const encodeCursor = (position: number) => Buffer.from(String(position)).toString("base64url");
const decodeCursor = (cursor: string | undefined): number | undefined => {
	if (cursor === undefined) return undefined;
	const position = Number(Buffer.from(cursor, "base64url").toString());
	if (!Number.isInteger(position) || position <= 0) throw rpcError(ErrorCode.InvalidParams, "Invalid cursor");
	return position;
};

/**
 * MCP Tasks over the tenant's durable queue: the SDK's task handlers (`tasks/get`, `tasks/result`,
 * `tasks/list`, `tasks/cancel`) call this store, and a task-augmented `tools/call` creates its task
 * here. An MCP task is a queue task (same id as `/api/v1/internal/tasks/{id}`); the index binds it
 * to the tenant and agent that created it, whatever their session: another caller's task is "not
 * found". One store per session, acting for the session's caller.
 */
export class QueueTaskStore implements TaskStore {
	constructor(
		private readonly backend: McpTaskBackend,
		private readonly index: McpTaskIndex,
		private readonly metaOf: () => CallerMeta,
		private readonly options: McpTaskOptions
	) {}

	async createTask(
		_params: unknown,
		_requestId: unknown,
		request: Request,
		sessionId?: string
	): Promise<Task> {
		const meta = this.metaOf();
		const { name, arguments: args, _meta } = request.params as CallToolRequest["params"];
		const expectedHash = typeof _meta?.definition_hash === "string" ? _meta.definition_hash : undefined;
		const task = await this.backend
			.submitTask(meta, { name, parameters: (args ?? {}) as JsonObject, expectedHash, sessionId })
			.catch(err => {
				throw protocolError(err);
			});
		await this.index.add(callerKey(meta), task.task_id);
		return this.toTask(task);
	}

	async getTask(taskId: string): Promise<Task | null> {
		const task = await this.load(taskId);
		return task && this.toTask(task);
	}

	async getTaskResult(taskId: string): Promise<Result> {
		const task = await this.load(taskId);
		if (!task) throw rpcError(ErrorCode.InvalidParams, `Task not found: ${taskId}`);
		if (task.status === "completed") return successResult(task.result ?? {});
		if (task.status === "cancelled") return errorResult(CANCELLED);
		return errorResult(task.error as { type: string; message: string });
	}

	async storeTaskResult(): Promise<void> {
		throw new Error("A task's result is stored by the executor that runs it");
	}

	/**
	 * Only cancellation reaches here (the SDK's `tasks/cancel`): the queue cancels a task that has not
	 * started. The SDK passes on an McpError as it is and turns anything else into -32600.
	 */
	async updateTaskStatus(taskId: string, status: Task["status"]): Promise<void> {
		if (status !== "cancelled") throw new Error(`A task does not move to ${status} over MCP`);
		try {
			await this.backend.cancelTask(this.metaOf(), taskId);
		} catch (err) {
			if (isNotFound(err)) throw new McpError(ErrorCode.InvalidParams, `Task not found: ${taskId}`);
			if (!isConflict(err)) {
				const { code, message } = protocolError(err) as Error & { code: number };
				throw new McpError(code, message);
			}
			const current = (err as { data?: { status?: string } }).data?.status;
			throw new McpError(
				ErrorCode.InvalidParams,
				current && TERMINAL.has(current)
					? `Cannot cancel task: already in terminal status '${current}'`
					: "Cannot cancel task: it is already running, and a run that has started is not interrupted"
			);
		}
	}

	async listTasks(cursor?: string): Promise<{ tasks: Task[]; nextCursor?: string }> {
		const owner = callerKey(this.metaOf());
		const { ids, last } = await this.index.page(owner, decodeCursor(cursor), this.options.pageSize);
		const tasks = await Promise.all(ids.map(id => this.load(id, false)));
		return {
			tasks: tasks.filter((task): task is TaskMessage => task !== null).map(task => this.toTask(task)),
			...(last !== undefined ? { nextCursor: encodeCursor(last) } : {})
		};
	}

	/** The caller's task from the queue, or null; an expired one is dropped from the index. */
	private async load(taskId: string, checkIndex = true): Promise<TaskMessage | null> {
		const meta = this.metaOf();
		const owner = callerKey(meta);
		if (checkIndex && !(await this.index.has(owner, taskId))) return null;
		const task = await this.backend.getTask(meta, taskId).catch(err => {
			if (isNotFound(err)) return null;
			throw protocolError(err);
		});
		if (!task) await this.index.remove(owner, [taskId]);
		return task;
	}

	private toTask(task: TaskMessage): Task {
		const status = STATUS[task.status];
		const finished = TERMINAL.has(task.status);
		return {
			taskId: task.task_id,
			status,
			statusMessage: this.statusMessage(task),
			createdAt: task.created_at,
			lastUpdatedAt: task.updated_at,
			// The queue keeps a task until it ends, then for the retention period.
			ttl: finished
				? Date.parse(task.updated_at) + this.options.retentionMs - Date.parse(task.created_at)
				: null,
			pollInterval: this.options.pollIntervalMs
		};
	}

	private statusMessage(task: TaskMessage): string {
		switch (task.status) {
			case "pending":
				return task.attempts ? `waiting to be retried after attempt ${task.attempts}` : "queued";
			case "processing":
				return `running (attempt ${task.attempts})`;
			case "failed": {
				const error = task.error as { type?: string; message?: string } | undefined;
				return `${error?.type ?? "failed"}: ${error?.message ?? ""}`;
			}
			case "cancelled":
				return CANCELLED.message;
			default:
				return "completed";
		}
	}
}
