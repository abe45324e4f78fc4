import type { Service, ServiceSchema } from "moleculer";
import { config } from "../lib/config";
import type { DependencyWatch } from "../lib/dependency-watch";
import type { GatewayAuth } from "../lib/gateway-auth";
import { McpGateway } from "../lib/mcp/gateway";
import { MemorySessionLogs } from "../lib/mcp/memory-event-log";
import { MemoryMcpTaskIndex } from "../lib/mcp/memory-task-index";
import { RedisSessionLogs } from "../lib/mcp/redis-event-log";
import { RedisMcpTaskIndex } from "../lib/mcp/redis-task-index";
import { isLoopbackAddress } from "../lib/outbound/address-guard";
import type { TaskMessage } from "../lib/tasks/task-queue";
import type { CallerMeta } from "../types/wire";
import type { RedisLocals, RedisSettings } from "./redis.mixin";
import type { TaskSubmissionSettings } from "./task-submission.mixin";

/** What the mixin sets; McpServerSettings adds what the host (`ip`) and RedisMixin bring. */
interface McpOwnSettings {
	/** MCP sessions: caps per credential and in all, and how long a session must be silent to be closed for room. */
	mcpSessions: { maxSessionsPerCredential: number; maxSessions: number; evictIdleAfterMs: number };
	/** SSE events kept per MCP session for clients that reconnect with `Last-Event-ID`; shared in Redis for this long after a session's last activity. */
	mcpReplay: { eventsPerSession: number; ttlMs: number };
	/** MCP Tasks: the `pollInterval` suggested, tasks per `tasks/list` page, tasks listed per tenant and agent. */
	mcpTasks: { pollIntervalMs: number; pageSize: number; maxPerOwner: number };
}

export type McpServerSettings = McpOwnSettings & RedisSettings & { ip: string };

export interface McpServerLocals extends RedisLocals {
	/** The Model Context Protocol server at /mcp. */
	mcp: McpGateway;
}

type McpThis = Service<McpServerSettings & Pick<TaskSubmissionSettings, "tasks" | "clock">> &
	McpServerLocals & { auth: GatewayAuth; reachable: DependencyWatch };

/**
 * The gateway's MCP server (`this.mcp`), reaching the cluster through the service's own calls: a
 * tool call runs on an executor, a task-augmented one is queued with `tasks.submit` like a REST task.
 * Needs the host's `auth` and `reachable` (set in its own `created`) and the TaskSubmissionMixin's `tasks.*` actions;
 * list it before RedisMixin (whose `created` must run first).
 */
export function McpServerMixin(): Partial<ServiceSchema> {
	const mixin: Partial<ServiceSchema<McpOwnSettings, object, McpServerLocals, McpThis>> = {
		settings: {
			mcpSessions: {
				maxSessionsPerCredential: config().mcpMaxSessionsPerCredential,
				maxSessions: config().mcpMaxSessions,
				evictIdleAfterMs: 60_000
			},
			mcpReplay: { eventsPerSession: 256, ttlMs: 30 * 60 * 1000 },
			mcpTasks: { pollIntervalMs: 1000, pageSize: 50, maxPerOwner: 1000 }
		},

		created(this: McpThis) {
			const { settings, redis, broker } = this;
			const retentionMs = settings.tasks.retentionS * 1000;
			const { pollIntervalMs, pageSize, maxPerOwner } = settings.mcpTasks;
			// An owner's index outlives its newest task: that task may wait in its queue before it ends.
			const indexOptions = { maxPerOwner, ttlMs: 2 * retentionMs };
			const index = redis
				? new RedisMcpTaskIndex(redis, settings.redisPrefix, indexOptions)
				: new MemoryMcpTaskIndex(indexOptions);
			const replay = { capacity: settings.mcpReplay.eventsPerSession, ttlMs: settings.mcpReplay.ttlMs };
			const logs = redis
				? new RedisSessionLogs(redis, settings.redisPrefix, replay)
				: new MemorySessionLogs(replay);
			// This node's own task actions: the index and the queue it writes are the ones this node reads.
			const local = (meta: CallerMeta) => ({ meta, nodeID: broker.nodeID });
			const taskStatus = (meta: CallerMeta, taskId: string) =>
				broker.call<TaskMessage, { task_id: string }>("api.tasks.status", { task_id: taskId }, local(meta));
			this.mcp = new McpGateway(
				{
					identify: req => this.auth.admit(req.headers, "tools:read"),
					listTools: (meta, offset, limit) => {
						this.reachable.require("registry.discover");
						return broker.call("registry.discover", { format: "mcp", limit, offset }, { meta });
					},
					searchTools: (meta, query) => {
						this.reachable.require("registry.discover");
						return broker.call("registry.discover", { limit: 5, ...query, format: "mcp" }, { meta });
					},
					// This gateway's own `tools.execute`, which fails over when an executor node is lost.
					execute: (meta, name, parameters, expectedHash) =>
						broker.call(
							"api.tools.execute",
							{ tool_name: name, parameters, ...(expectedHash ? { expected_hash: expectedHash } : {}) },
							{ meta, nodeID: broker.nodeID }
						),
					submitTask: async (meta, { name, parameters, expectedHash, sessionId }) => {
						const { task_id } = await broker.call<{ task_id: string }, object>(
							"api.tasks.submit",
							{
								type: "tool_execution",
								payload: {
									tool_name: name,
									parameters,
									...(expectedHash ? { expected_hash: expectedHash } : {})
								},
								metadata: { source: "agent_execution", ...(sessionId ? { session_id: sessionId } : {}) }
							},
							local(meta)
						);
						return taskStatus(meta, task_id);
					},
					getTask: taskStatus,
					cancelTask: (meta, taskId) =>
						broker.call<TaskMessage, { task_id: string }>(
							"api.tasks.cancel",
							{ task_id: taskId },
							local(meta)
						)
				},
				{
					loopbackOnly: isLoopbackAddress(settings.ip),
					// A session's shared record and log live as long as a silent session on a node.
					idleSessionMs: settings.mcpReplay.ttlMs,
					logs,
					...settings.mcpSessions,
					clock: settings.clock,
					tasks: { index, pollIntervalMs, pageSize, retentionMs }
				}
			);
		}
	};
	return mixin as Partial<ServiceSchema>;
}
