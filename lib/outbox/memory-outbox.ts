import type { Outbox } from "./outbox";

/** The embedded default: the outbox of this process, lost when it stops. */
export class MemoryOutbox implements Outbox {
	private frames: string[] = [];
	/** Index of the oldest frame: removal only moves it, and the array is compacted now and then. */
	private head = 0;
	private droppedCount = 0;
	private readonly listeners = new Set<(frame: string) => void>();

	constructor(private readonly max: number) {}

	/**
	 * Appends synchronously, so a task queue in the same process records a status and its frame in one
	 * step; returns the number of oldest frames dropped.
	 */
	append(frame: string): number {
		this.frames.push(frame);
		const over = Math.max(this.frames.length - this.head - this.max, 0);
		this.remove(over);
		this.droppedCount += over;
		for (const listener of this.listeners) listener(frame);
		return over;
	}

	/** Calls `listener` with every frame appended from now on; returns the unsubscribe function. */
	subscribe(listener: (frame: string) => void): () => void {
		this.listeners.add(listener);
		return () => this.listeners.delete(listener);
	}

	async push(frame: string): Promise<number> {
		return this.append(frame);
	}

	async peek(n: number): Promise<string[]> {
		return this.frames.slice(this.head, this.head + n);
	}

	async ack(n: number): Promise<void> {
		this.remove(n);
	}

	async size(): Promise<number> {
		return this.frames.length - this.head;
	}

	async dropped(): Promise<number> {
		return this.droppedCount;
	}

	private remove(n: number) {
		this.head = Math.min(this.head + n, this.frames.length);
		// Compacting once half the array is dead keeps removal amortised O(1).
		if (this.head > 1024 && this.head * 2 > this.frames.length) {
			this.frames = this.frames.slice(this.head);
			this.head = 0;
		}
	}
}
