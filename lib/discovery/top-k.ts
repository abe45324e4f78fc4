/**
 * The k best of a stream of scored candidates without sorting them all: a binary heap whose root is the
 * worst candidate kept, so that most candidates of a long stream cost one comparison. Ties are broken
 * by `order` (lower first), which makes the result the same as a stable sort of the whole stream by
 * score when `order` is the position in that stream.
 */
export class TopK {
	private readonly slots: Int32Array;
	private readonly scores: Float64Array;
	private readonly orders: Float64Array;
	private size = 0;

	constructor(readonly k: number) {
		this.slots = new Int32Array(k);
		this.scores = new Float64Array(k);
		this.orders = new Float64Array(k);
	}

	/** The lowest score a candidate needs to be considered (-Infinity until k are kept). */
	get worst(): number {
		return this.size < this.k ? -Infinity : this.scores[0];
	}

	/** Whether a candidate of this score and order would be kept: worth checking before `push`. */
	admits(score: number, order: number): boolean {
		if (this.size < this.k) return this.k > 0;
		const worst = this.scores[0];
		return score > worst || (score === worst && order < this.orders[0]);
	}

	push(slot: number, score: number, order: number): void {
		if (!this.admits(score, order)) return;
		if (this.size < this.k) {
			let i = this.size++;
			// Sift up: a parent is worse than (or as bad as) its children.
			while (i > 0) {
				const parent = (i - 1) >> 1;
				if (!this.worse(score, order, this.scores[parent], this.orders[parent])) break;
				this.move(parent, i);
				i = parent;
			}
			this.put(i, slot, score, order);
			return;
		}
		this.siftDown(slot, score, order);
	}

	/** Puts a candidate at the root and moves it down to its place among the `size` kept. */
	private siftDown(slot: number, score: number, order: number): void {
		let i = 0;
		for (;;) {
			const left = 2 * i + 1;
			if (left >= this.size) break;
			const right = left + 1;
			const child =
				right < this.size &&
				this.worse(this.scores[right], this.orders[right], this.scores[left], this.orders[left])
					? right
					: left;
			if (!this.worse(this.scores[child], this.orders[child], score, order)) break;
			this.move(child, i);
			i = child;
		}
		this.put(i, slot, score, order);
	}

	/** The candidates kept, best first; empties the heap (the worst is taken from the root each time). */
	sorted(): { slot: number; score: number }[] {
		const out = new Array<{ slot: number; score: number }>(this.size);
		while (this.size > 0) {
			out[this.size - 1] = { slot: this.slots[0], score: this.scores[0] };
			const last = --this.size;
			if (last > 0) this.siftDown(this.slots[last], this.scores[last], this.orders[last]);
		}
		return out;
	}

	/** Whether (s1, o1) ranks after (s2, o2). */
	private worse(s1: number, o1: number, s2: number, o2: number): boolean {
		return s1 < s2 || (s1 === s2 && o1 > o2);
	}

	private move(from: number, to: number): void {
		this.put(to, this.slots[from], this.scores[from], this.orders[from]);
	}

	private put(i: number, slot: number, score: number, order: number): void {
		this.slots[i] = slot;
		this.scores[i] = score;
		this.orders[i] = order;
	}
}
