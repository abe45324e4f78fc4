import { dotsKernel, type DotsKernel } from "./int8-dots";
import { TopK } from "./top-k";
import { cosineAt, type QuantizedVector } from "./vectors";

/** Below this many bytes of vectors the scan runs in JavaScript (a tenant of a few hundred tools). */
const KERNEL_MIN_BYTES = 256 * 1024;
/** Largest query component in the kernel: 15 bits keep every int32 sum of products far from overflow. */
const QUERY_MAX = 16383;
/**
 * The kernel's int16 query moves a cosine by about 1e-5: it picks this many candidates more than
 * asked for, and their exact cosines (Float32 query, as before) decide the order and the floor.
 */
const MARGIN = 16;
const PAGE = 65536;

export interface ScoredSlot {
	slot: number;
	score: number;
}

/**
 * The int8 vectors of one index, by slot, one after another in one block of memory (a WebAssembly
 * memory once there are enough of them), so that ranking by meaning is one pass of the SIMD kernel
 * over contiguous bytes and a partial top-k, not a cosine call and an object per tool and a full sort.
 * Vectors of another length than the first one's are cut or padded with zeros (a cosine over the
 * common dimensions, as `cosine` computes it).
 */
export class VectorMatrix {
	private dims = 0;
	/** Bytes per vector: dims rounded up to 16 (the kernel reads 16 at a time). */
	private stride = 0;
	private capacity = 0;
	/** One past the highest slot ever set: the scan stops there. */
	private used = 0;
	private values = new Int8Array(0);
	/** Scale of each slot's vector; 0 where a slot has none. */
	private scales = new Float64Array(0);
	private kernel: DotsKernel | null = null;

	constructor(private readonly kernelMinBytes = KERNEL_MIN_BYTES) {}

	set(slot: number, vector: QuantizedVector): void {
		if (!this.dims) {
			this.dims = vector.values.length;
			this.stride = Math.ceil(this.dims / 16) * 16;
		}
		if (slot >= this.capacity) this.grow(slot + 1);
		this.used = Math.max(this.used, slot + 1);
		const at = slot * this.stride;
		const length = Math.min(vector.values.length, this.dims);
		this.values.set(vector.values.subarray(0, length), at);
		this.values.fill(0, at + length, at + this.stride);
		// A zero scale would read as "no vector": the smallest positive number keeps it present.
		this.scales[slot] = vector.scale || Number.MIN_VALUE;
	}

	delete(slot: number): void {
		if (slot < this.capacity) this.scales[slot] = 0;
	}

	has(slot: number): boolean {
		return slot < this.capacity && this.scales[slot] !== 0;
	}

	/** A copy of a slot's vector. */
	get(slot: number): QuantizedVector | undefined {
		if (!this.has(slot)) return undefined;
		const at = slot * this.stride;
		return { values: this.values.slice(at, at + this.dims), scale: this.scales[slot] };
	}

	/**
	 * The `k` slots closest to a unit query with a cosine of at least `floor` that `accept` admits, best
	 * first; equal cosines in the order `order` gives (lower first).
	 */
	search(
		query: Float32Array,
		k: number,
		floor: number,
		accept: (slot: number) => boolean,
		order: (slot: number) => number
	): ScoredSlot[] {
		if (!this.dims || k <= 0) return [];
		const exact = (slot: number) =>
			cosineAt(query, this.values, slot * this.stride, this.dims, this.scales[slot]);
		const best = new TopK(this.kernel ? k + MARGIN : k);
		const scales = this.scales;
		const consider = (slot: number, score: number) => {
			const rank = order(slot);
			if (best.admits(score, rank) && accept(slot)) best.push(slot, score, rank);
		};
		if (this.kernel) {
			const { dots, scale } = this.kernelDots(query);
			// The kernel's cosines are within about 1e-4 of the exact ones: keep those near the floor too.
			let threshold = floor - 1e-3;
			for (let slot = 0; slot < dots.length; slot++) {
				const score = dots[slot] * scale * scales[slot];
				if (score < threshold || scales[slot] === 0) continue;
				consider(slot, score);
				threshold = Math.max(floor - 1e-3, best.worst);
			}
		} else
			for (let slot = 0; slot < this.used; slot++) {
				if (scales[slot] === 0) continue;
				const score = exact(slot);
				if (score >= floor && score >= best.worst) consider(slot, score);
			}
		const found = best.sorted();
		if (!this.kernel) return found;
		const rescored = found
			.map(({ slot }) => ({ slot, score: exact(slot) }))
			.filter(({ score }) => score >= floor)
			.sort((a, b) => b.score - a.score || order(a.slot) - order(b.slot));
		return rescored.length > k ? rescored.slice(0, k) : rescored;
	}

	/** Runs the kernel: int32 dots of every slot with the query quantized to int16, and the query's scale. */
	private kernelDots(query: Float32Array): { dots: Int32Array; scale: number } {
		let max = 0;
		for (let i = 0; i < Math.min(query.length, this.dims); i++) max = Math.max(max, Math.abs(query[i]));
		const scale = max / QUERY_MAX || 1;
		const { queryAt, outAt } = this.layout();
		const q = new Int16Array(this.kernel!.memory.buffer, queryAt, this.stride);
		q.fill(0);
		for (let i = 0; i < Math.min(query.length, this.dims); i++) q[i] = Math.round(query[i] / scale);
		this.kernel!.dots(queryAt, 0, this.stride, this.used, outAt);
		return { dots: new Int32Array(this.kernel!.memory.buffer, outAt, this.used), scale };
	}

	/** Kernel memory: the vectors from byte 0, then the int16 query, then the int32 results. */
	private layout(capacity = this.capacity) {
		const queryAt = capacity * this.stride;
		const outAt = queryAt + this.stride * 2;
		return { queryAt, outAt, end: outAt + capacity * 4 };
	}

	private grow(needed: number): void {
		const capacity = Math.max(needed, this.capacity * 2, 16);
		const bytes = capacity * this.stride;
		const scales = new Float64Array(capacity);
		scales.set(this.scales);
		this.scales = scales;
		if (!this.kernel && bytes >= this.kernelMinBytes) this.kernel = dotsKernel(0);
		if (this.kernel) {
			const { memory } = this.kernel;
			const wasJs = this.values.buffer !== memory.buffer;
			const pages = Math.ceil(this.layout(capacity).end / PAGE) - memory.buffer.byteLength / PAGE;
			const old = wasJs ? this.values : null;
			if (pages > 0) memory.grow(pages);
			this.values = new Int8Array(memory.buffer, 0, bytes);
			if (old) this.values.set(old);
			// Slots past the old capacity may hold the old query and results: clear them.
			this.values.fill(0, this.capacity * this.stride);
		} else {
			const values = new Int8Array(bytes);
			values.set(this.values);
			this.values = values;
		}
		this.capacity = capacity;
	}
}
