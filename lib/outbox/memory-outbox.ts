import type { Outbox } from "./outbox";

/** The embedded default: the outbox of this process, lost when it stops. */
export class MemoryOutbox implements Outbox {
	private frames: string[] = [];
	/** Index of the oldest frame: removal only moves it, and the array is compacted now and then. */
	private head = 0;

	constructor(private readonly max: number) {}

	async push(frame: string): Promise<number> {
		this.frames.push(frame);
		const over = Math.max(this.frames.length - this.head - this.max, 0);
		this.remove(over);
		return over;
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

	private remove(n: number) {
		this.head = Math.min(this.head + n, this.frames.length);
		// Compacting once half the array is dead keeps removal amortised O(1).
		if (this.head > 1024 && this.head * 2 > this.frames.length) {
			this.frames = this.frames.slice(this.head);
			this.head = 0;
		}
	}
}
