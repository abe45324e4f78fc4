/**
 * Turns texts into unit vectors whose dot product is their similarity of meaning. Implementations:
 * `local` (a model shipped in an npm package, in worker threads) and `orchestrator` (the Embedding
 * Service behind the Agent Orchestrator).
 */
export interface Embedder {
	/** Names the vector space: vectors of different models are never compared or shared. */
	readonly model: string;
	/**
	 * Vectors of `texts`, in order. `query` texts are someone's discovery request waiting: they go
	 * before background work (tool descriptions).
	 */
	embed(texts: string[], priority: "query" | "background"): Promise<Float32Array[]>;
	close(): Promise<void>;
}
