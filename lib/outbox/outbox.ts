/**
 * Frames (JSON text) waiting to be sent to the orchestrator, oldest first. Any notifier node may
 * push; only the one holding leadership reads: it peeks a batch, sends it, then acks what was sent,
 * so a frame leaves the outbox only after it was written to the socket (at-least-once).
 *
 * Bounded: when `max` frames are waiting, a push drops the oldest to make room and reports how many
 * it dropped. During a long outage the newest state of each task is worth more than the oldest
 * transitions, and memory (or Redis) stays bounded. A drop during a drain may take a frame of the
 * batch in flight; the ack then removes the oldest unsent frame instead, which is the same policy.
 */
export interface Outbox {
	/** Appends a frame; resolves the number of oldest frames dropped to stay within the bound. */
	push(frame: string): Promise<number>;
	/** The `n` oldest frames, oldest first, without removing them. */
	peek(n: number): Promise<string[]>;
	/** Removes the `n` oldest frames once they were sent. */
	ack(n: number): Promise<void>;
	size(): Promise<number>;
}
