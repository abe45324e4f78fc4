/**
 * Tool vectors by `{model}:{definition_hash}`, shared by every registry node: a vector is computed
 * once, by the node that claims it, and read by the others. Values are encoded vectors (see
 * lib/discovery/vectors.ts).
 */
export interface VectorStore {
	/** The stored vectors of `keys`, in order; null where there is none yet. */
	get(keys: string[]): Promise<(Buffer | null)[]>;
	set(key: string, vector: Buffer): Promise<void>;
	/**
	 * True for one owner per key until `ttlMs` has passed (again for that owner, renewing it): that
	 * owner computes the vector, the others wait for it to appear. An owner that dies is replaced once
	 * its claim expires.
	 */
	claim(key: string, owner: string, ttlMs: number): Promise<boolean>;
}
