import type { ValidationProblem } from "../../types/wire";
import { guardedRequest, OutboundRefused, OutboundTooLarge } from "./guarded-fetch";

/**
 * Functional check of an `external_api` tool: its origin must pass the address guard and answer
 * below 500. The origin, not the templated path, is probed: placeholders have no values yet, and
 * a probe must not trigger the API's side effects.
 */
export async function probeOrigin(
	url: string,
	options: { allowHosts: readonly string[]; timeoutMs: number }
): Promise<ValidationProblem[]> {
	let origin: string;
	try {
		origin = `${new URL(url).origin}/`;
	} catch {
		return [{ field: "config.url", message: "is not a valid URL" }];
	}
	try {
		const response = await guardedRequest(origin, {
			method: "GET",
			allowHosts: options.allowHosts,
			timeoutMs: options.timeoutMs,
			maxResponseBytes: 64 * 1024,
			maxRedirects: 3
		});
		return response.status < 500
			? []
			: [{ field: "config.url", message: `the API answered ${response.status} to a probe of ${origin}` }];
	} catch (err) {
		// A body larger than the probe reads still proves the API answered.
		if (err instanceof OutboundTooLarge) return [];
		const reason = err instanceof OutboundRefused ? "its address is refused" : (err as Error).message;
		return [{ field: "config.url", message: `the API cannot be reached: ${reason}` }];
	}
}
