import type { ToolHealth, ValidationProblem } from "../../types/wire";
import { guardedRequest, OutboundRefused, OutboundTooLarge } from "./guarded-fetch";

export interface ProbeResult {
	/** What will never work (a malformed or refused address): the tool is invalid. */
	problems: ValidationProblem[];
	/** Whether the upstream answered; an unreachable one may answer later. */
	health: Pick<ToolHealth, "state" | "error">;
}

/**
 * Functional check of an `external_api` tool. Its origin, not the templated path, is probed:
 * placeholders have no values yet, and a probe must not trigger the API's side effects. Any HTTP
 * answer below 500 proves the upstream reachable; no answer (DNS failure, refused connection,
 * timeout) or a 5xx leaves the definition valid and the upstream `unreachable`.
 */
export async function probeOrigin(
	url: string,
	options: { allowHosts: readonly string[]; timeoutMs: number }
): Promise<ProbeResult> {
	let origin: string;
	try {
		origin = `${new URL(url).origin}/`;
	} catch {
		return {
			problems: [{ field: "config.url", message: "is not a valid URL" }],
			health: { state: "unknown" }
		};
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
			? { problems: [], health: { state: "healthy" } }
			: { problems: [], health: { state: "unreachable", error: `${origin} answered ${response.status}` } };
	} catch (err) {
		// A body larger than the probe reads still proves the API answered.
		if (err instanceof OutboundTooLarge) return { problems: [], health: { state: "healthy" } };
		if (err instanceof OutboundRefused)
			return {
				problems: [{ field: "config.url", message: `its address is refused: ${err.message}` }],
				health: { state: "unknown" }
			};
		return { problems: [], health: { state: "unreachable", error: (err as Error).message } };
	}
}
