import { Agent, fetch as undiciFetch, type RequestInit as UndiciRequestInit } from "undici";
import { AddressGuard } from "./address-guard";
import { checkedUrl, guardedConnector, OutboundError } from "./guarded-fetch";

/** The WHATWG `fetch` signature, as the MCP SDK's transports take it. */
export type WebFetch = (url: string | URL, init?: RequestInit) => Promise<Response>;

export interface GuardedWebFetch {
	fetch: WebFetch;
	/** Closes the pooled connections. */
	close(): Promise<void>;
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
/** Headers kept when a redirect leaves the configured origin: the others may carry the tenant's secrets. */
const CROSS_ORIGIN_HEADERS = new Set(["accept", "accept-language", "content-type", "user-agent"]);

/**
 * A streaming `fetch` for long-lived clients of tenant-chosen servers (MCP sources): one pooled agent
 * whose connector checks every address it connects to, so a reused connection was checked when it
 * was made. Redirects are followed here, each target checked the same way, and the configured
 * headers stay with their origin; a caller asking for `redirect: "manual"` gets the 3xx itself.
 */
export function createGuardedWebFetch(options: {
	allowHosts?: readonly string[];
	connectTimeoutMs?: number;
	maxRedirects?: number;
}): GuardedWebFetch {
	const { connectTimeoutMs = 10_000, maxRedirects = 3 } = options;
	const agent = new Agent({
		connect: guardedConnector(new AddressGuard(options.allowHosts), connectTimeoutMs)
	});

	const guardedFetch: WebFetch = async (input, init = {}) => {
		let target = checkedUrl(String(input));
		let headers = new Headers(init.headers);
		const manual = init.redirect === "manual";
		for (let hop = 0; ; hop++) {
			const response = (await undiciFetch(target, {
				...(init as UndiciRequestInit),
				headers: headers as unknown as UndiciRequestInit["headers"],
				redirect: "manual",
				dispatcher: agent
			})) as unknown as Response;
			const location = response.headers.get("location");
			if (manual || !REDIRECT_STATUSES.has(response.status) || !location) return response;
			await response.body?.cancel();
			if (init.redirect === "error") throw new OutboundError("the server answered with a redirect");
			if (hop >= maxRedirects) throw new OutboundError(`more than ${maxRedirects} redirects`);
			const next = checkedUrl(location, target);
			if (next.origin !== target.origin) {
				const kept = new Headers();
				headers.forEach((value, name) => CROSS_ORIGIN_HEADERS.has(name) && kept.set(name, value));
				headers = kept;
			}
			// Only redirects that keep the method and body are followed: a message must not turn into a GET.
			if (response.status !== 307 && response.status !== 308 && (init.method ?? "GET") !== "GET")
				throw new OutboundError(`redirect ${response.status} would change the request's method`);
			target = next;
		}
	};

	return { fetch: guardedFetch, close: () => agent.close() };
}
