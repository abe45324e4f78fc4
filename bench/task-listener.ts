import type { AddressInfo } from "net";
import { WebSocketServer } from "ws";
import { SERVICE_TOKEN } from "../test/support/node";

/** What the listener saw of one batch; a batch is told by its tenants' prefix (`<batch>-t<n>`). */
export interface BatchCount {
	completed: number;
	failed: number;
	/** Date.now() of the last completion or failure. */
	last: number;
}

export interface BatchSummary extends BatchCount {
	/** From the submission's answer to the task's final frame at the listener. */
	latencyP50: number;
	latencyP99: number;
	failures: Record<string, number>;
	/** One error message per failure type. */
	examples: Record<string, string>;
}

interface Tally extends BatchCount {
	latencies: number[];
	failures: Record<string, number>;
	examples: Record<string, string>;
}

interface TaskFrame {
	event: string;
	task_id: string;
	tenant_id: string;
	data: { error?: string; error_type?: string };
}

export const percentile = (sorted: number[], p: number) =>
	sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] : 0;

/**
 * The Agent Orchestrator's end of the notification WebSocket, as the product's notifier meets it
 * (`ORCHESTRATOR_WS_URL`): it accepts the handshake and tallies every task's final frame per batch,
 * with the time from the submission's 202 (`accepted`) to the frame's arrival.
 */
export class TaskListener {
	private readonly tallies = new Map<string, Tally>();
	/** When each task was accepted (Date.now() at its 202), so a frame's arrival gives its latency. */
	private readonly acceptedAt = new Map<string, number>();
	/** Final frames that arrived before their submission's answer was read: when, and of which batch. */
	private readonly early = new Map<string, { at: number; batch: string }>();

	private constructor(private readonly server: WebSocketServer) {
		server.on("connection", socket => {
			let greeted = false;
			socket.on("message", data => {
				const message = JSON.parse(data.toString()) as Record<string, unknown>;
				if (!greeted) {
					greeted = true;
					const ok = message.service_token === SERVICE_TOKEN;
					socket.send(JSON.stringify({ status: ok ? "authenticated" : "error" }));
					if (!ok) socket.close(1008, "authentication failed");
					return;
				}
				this.record(message as unknown as TaskFrame);
			});
		});
	}

	static start(): Promise<TaskListener> {
		return new Promise((resolve, reject) => {
			const server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
			server.once("error", reject);
			server.once("listening", () => resolve(new TaskListener(server)));
		});
	}

	get url(): string {
		return `ws://127.0.0.1:${(this.server.address() as AddressInfo).port}/ws/task_updates`;
	}

	accepted(taskId: string, at: number): void {
		const early = this.early.get(taskId);
		if (!early) this.acceptedAt.set(taskId, at);
		else {
			this.early.delete(taskId);
			this.tally(early.batch).latencies.push(Math.max(0, early.at - at));
		}
	}

	count(batch: string): BatchCount {
		const { completed, failed, last } = this.tally(batch);
		return { completed, failed, last };
	}

	summary(batch: string): BatchSummary {
		const tally = this.tally(batch);
		const sorted = [...tally.latencies].sort((a, b) => a - b);
		return {
			completed: tally.completed,
			failed: tally.failed,
			last: tally.last,
			latencyP50: percentile(sorted, 50),
			latencyP99: percentile(sorted, 99),
			failures: tally.failures,
			examples: tally.examples
		};
	}

	stop(): Promise<void> {
		for (const client of this.server.clients) client.terminate();
		return new Promise(resolve => this.server.close(() => resolve()));
	}

	private tally(batch: string): Tally {
		let tally = this.tallies.get(batch);
		if (!tally)
			this.tallies.set(
				batch,
				(tally = { completed: 0, failed: 0, last: 0, latencies: [], failures: {}, examples: {} })
			);
		return tally;
	}

	private record(frame: TaskFrame): void {
		if (frame.event !== "task_completed" && frame.event !== "task_failed") return;
		const batch = frame.tenant_id.slice(0, frame.tenant_id.indexOf("-"));
		const tally = this.tally(batch);
		tally.last = Date.now();
		const submitted = this.acceptedAt.get(frame.task_id);
		if (submitted === undefined) this.early.set(frame.task_id, { at: tally.last, batch });
		else {
			this.acceptedAt.delete(frame.task_id);
			tally.latencies.push(tally.last - submitted);
		}
		if (frame.event === "task_completed") tally.completed++;
		else {
			tally.failed++;
			const type = frame.data.error_type ?? "unknown";
			tally.failures[type] = (tally.failures[type] ?? 0) + 1;
			tally.examples[type] ??= frame.data.error ?? "";
		}
	}
}
