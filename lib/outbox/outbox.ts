/**
 * Frames (JSON text) waiting to be sent to the orchestrator, oldest first. A task's status change
 * and its frame are recorded together by the task queue (one Redis script, or one synchronous step in
 * memory), every status change of a task included; `push` appends a frame on its own (the notifier's
 * and the UI sockets' tests feed them so). Only the notifier holding leadership reads: it peeks a batch,
 * sends it, then acks what was sent, so a frame leaves the outbox only after it was written to the
 * socket (at-least-once).
 *
 * Every recorded frame is also published live (Redis pub/sub, or an in-process listener) to wake the
 * leader and to reach the gateways' UI clients; the outbox, not the publication, holds the copy
 * that counts.
 *
 * Bounded: when `max` frames are waiting, a push drops the oldest to make room and counts them.
 * During a long outage the newest state of each task is worth more than the oldest transitions, and
 * memory (or Redis) stays bounded.
 */
export interface Outbox {
	/** Appends a frame and publishes it; resolves the number of oldest frames dropped to stay within the bound. */
	push(frame: string): Promise<number>;
	/** The `n` oldest frames, oldest first, without removing them. */
	peek(n: number): Promise<string[]>;
	/** Removes the `n` oldest frames once they were sent. */
	ack(n: number): Promise<void>;
	size(): Promise<number>;
	/** Frames dropped so far because the outbox was full (across nodes on Redis). */
	dropped(): Promise<number>;
}

/** Frames kept while the orchestrator is away, unless configured otherwise; beyond it the oldest are dropped. */
export const DEFAULT_OUTBOX_MAX = 100000;
