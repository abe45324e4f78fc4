import { readCapped } from "../../outbound/guarded-fetch";
import { normalize } from "../vectors";
import type { Embedder } from "./embedder";

export interface OrchestratorEmbedderOptions {
	/** Base URL of the Agent Orchestrator (`ORCHESTRATOR_URL`). */
	baseUrl: string;
	/** Sent as `Authorization: Bearer`, as the orchestrator expects of trusted services. */
	serviceToken?: string;
	timeoutMs: number;
	/** Most texts in one request. */
	maxBatch: number;
}

/** Largest answer read: 64 texts of 4,096 numbers as JSON fit well within it. */
const MAX_RESPONSE_BYTES = 16 * 2 ** 20;

/**
 * The seed's Embedding Service reached through the orchestrator: `POST {base}/api/v1/embeddings`
 * with `{"texts": [...]}` answers `{"embeddings": [[...], ...]}`. One request per batch of texts.
 */
export class OrchestratorEmbedder implements Embedder {
	readonly model = "orchestrator";
	private readonly url: string;
	private readonly abort = new AbortController();

	constructor(private readonly options: OrchestratorEmbedderOptions) {
		this.url = new URL("/api/v1/embeddings", options.baseUrl.replace(/\/+$/, "") + "/").href;
	}

	async embed(texts: string[]): Promise<Float32Array[]> {
		const vectors: Float32Array[] = [];
		for (let i = 0; i < texts.length; i += this.options.maxBatch)
			vectors.push(...(await this.request(texts.slice(i, i + this.options.maxBatch))));
		return vectors;
	}

	async close(): Promise<void> {
		this.abort.abort();
	}

	private async request(texts: string[]): Promise<Float32Array[]> {
		const headers: Record<string, string> = { "content-type": "application/json" };
		if (this.options.serviceToken) headers.authorization = `Bearer ${this.options.serviceToken}`;
		const response = await fetch(this.url, {
			method: "POST",
			headers,
			body: JSON.stringify({ texts }),
			// A redirect would carry the service token elsewhere.
			redirect: "error",
			signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.options.timeoutMs)])
		});
		if (!response.ok || Number(response.headers.get("content-length")) > MAX_RESPONSE_BYTES) {
			await response.body?.cancel();
			throw new Error(`embedding service answered ${response.status}`);
		}
		const text = (await readCapped(response.body, MAX_RESPONSE_BYTES)).toString("utf8");
		const embeddings = (JSON.parse(text) as { embeddings?: unknown }).embeddings;
		const valid =
			Array.isArray(embeddings) &&
			embeddings.length === texts.length &&
			embeddings.every(
				(v: unknown) =>
					Array.isArray(v) &&
					v.length > 0 &&
					v.length === (embeddings[0] as unknown[]).length &&
					v.every(x => typeof x === "number" && Number.isFinite(x))
			);
		if (!valid) throw new Error("embedding service answered no usable embeddings");
		return (embeddings as number[][]).map(normalize);
	}
}
