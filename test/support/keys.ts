import { dropPrefix, uniquePrefix } from "./backends";
import { http, SERVICE_TOKEN, startNode, type HttpResult, type TestNode } from "./node";

/**
 * Starts a node on `redisUrl`'s store (memory when undefined) before the suite and stops it after;
 * `node` is set once it runs. `createKey` mints through POST /api/v1/keys: with the service token the
 * acting tenant is "ops", an API key brings its own.
 */
export function useKeysNode(redisUrl: string | undefined) {
	const prefix = uniquePrefix();
	const keys = {
		node: undefined as unknown as TestNode,
		/** The node's Redis key prefix. */
		prefix,
		createKey: (body: Record<string, unknown>, token: string = SERVICE_TOKEN): Promise<HttpResult> =>
			http(keys.node.url, "POST", "/api/v1/keys", {
				token,
				tenant: token === SERVICE_TOKEN ? "ops" : undefined,
				body
			})
	};

	beforeAll(async () => {
		keys.node = await startNode({ redisUrl, redisPrefix: prefix });
	});

	afterAll(async () => {
		await keys.node?.stop();
		if (redisUrl) await dropPrefix(redisUrl, prefix);
	});
	return keys;
}
