import { dotsKernel } from "../../lib/discovery/int8-dots";
import { VectorMatrix } from "../../lib/discovery/vector-matrix";
import { cosine, normalize, quantize, type QuantizedVector } from "../../lib/discovery/vectors";

/** Deterministic values in [-0.5, 0.5), so that every run checks the same vectors. */
let seed = 11;
const next = () => {
	const x = Math.sin(++seed * 12.9898) * 43758.5453;
	return x - Math.floor(x) - 0.5;
};
const unit = (dims: number, toward?: Float32Array) =>
	normalize(Array.from({ length: dims }, (_, i) => next() + (toward ? toward[i] * 0.08 : 0)));

describe("int8 dots kernel", () => {
	it("computes exact int32 dot products of an int16 query with int8 vectors", () => {
		const kernel = dotsKernel(1);
		// Node 20 has WebAssembly SIMD: the kernel must be there (the matrix falls back without it).
		expect(kernel).not.toBeNull();
		const { memory, dots } = kernel!;
		const stride = 32;
		const count = 5;
		const vectors = new Int8Array(memory.buffer, 0, stride * count);
		const query = new Int16Array(memory.buffer, stride * count, stride);
		vectors.forEach((_, i) => (vectors[i] = Math.round(next() * 254)));
		query.forEach((_, i) => (query[i] = Math.round(next() * 32766)));
		vectors[0] = -128;
		query[0] = 16383;
		const outAt = stride * count + stride * 2;
		dots(stride * count, 0, stride, count, outAt);
		const out = new Int32Array(memory.buffer, outAt, count);
		for (let v = 0; v < count; v++) {
			let expected = 0;
			for (let i = 0; i < stride; i++) expected += query[i] * vectors[v * stride + i];
			expect(out[v]).toBe(expected);
		}
	});
});

describe("VectorMatrix", () => {
	const dims = 40; // not a multiple of 16: padded
	const query = unit(dims);
	const vectors: QuantizedVector[] = Array.from({ length: 600 }, (_, i) =>
		quantize(unit(dims, i % 3 ? undefined : query))
	);
	const exact = vectors
		.map((vector, slot) => ({ slot, score: cosine(query, vector) }))
		.sort((a, b) => b.score - a.score || a.slot - b.slot);

	// A tiny kernel threshold takes the WebAssembly path; a huge one stays in JavaScript.
	for (const [path, minBytes] of [
		["WebAssembly", 1],
		["JavaScript", Infinity]
	] as const)
		it(`finds the k closest above the floor with exact cosines, ties in order (${path})`, () => {
			const matrix = new VectorMatrix(minBytes);
			vectors.forEach((vector, slot) => matrix.set(slot, vector));
			const found = matrix.search(
				query,
				25,
				0.1,
				() => true,
				slot => slot
			);
			expect(found).toEqual(exact.filter(({ score }) => score >= 0.1).slice(0, 25));
			// Filters, removals and replacements.
			matrix.delete(exact[0].slot);
			matrix.set(exact[1].slot, vectors[exact[5].slot]);
			const odd = matrix.search(
				query,
				5,
				-1,
				slot => slot % 2 === 1,
				slot => slot
			);
			const expected = vectors
				.map((vector, slot) => ({
					slot,
					score:
						slot === exact[0].slot
							? -2
							: cosine(query, slot === exact[1].slot ? vectors[exact[5].slot] : vector)
				}))
				.filter(({ slot, score }) => slot % 2 === 1 && score >= -1)
				.sort((a, b) => b.score - a.score || a.slot - b.slot)
				.slice(0, 5);
			expect(odd).toEqual(expected);
			expect(matrix.has(exact[0].slot)).toBe(false);
			expect(matrix.get(exact[1].slot)).toEqual(vectors[exact[5].slot]);
			expect(
				matrix.search(
					query,
					0,
					0,
					() => true,
					slot => slot
				)
			).toEqual([]);
		});

	it("keeps its vectors when it grows from JavaScript memory into the kernel's", () => {
		const matrix = new VectorMatrix(100 * 48);
		vectors.slice(0, 50).forEach((vector, slot) => matrix.set(slot, vector));
		vectors.slice(50, 300).forEach((vector, i) => matrix.set(50 + i, vector));
		vectors.slice(0, 300).forEach((vector, slot) => expect(matrix.get(slot)).toEqual(vector));
		const expected = exact.filter(({ slot }) => slot < 300).slice(0, 10);
		expect(
			matrix.search(
				query,
				10,
				-1,
				() => true,
				slot => slot
			)
		).toEqual(expected);
	});
});
