import dns from "node:dns";
import type { IncomingHttpHeaders } from "node:http";
import net from "node:net";
import { Agent, buildConnector, errors, request, type Dispatcher } from "undici";
import { AddressGuard } from "./address-guard";

/**
 * HTTP client for destinations chosen by tenants (external_api tools, task callbacks): every address it
 * connects to, on every redirect hop, passes the AddressGuard first.
 */

export const DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024;

/** Anything this client refuses or gives up on; errors of other kinds are the caller's own (bad headers). */
export class OutboundError extends Error {
	override name = "OutboundError";
}

/** The destination is not allowed: scheme, credentials in the URL, or a refused address. */
export class OutboundRefused extends OutboundError {
	override name = "OutboundRefused";

	constructor(
		message: string,
		/** For logs: why the address was refused (e.g. `loopback`); kept out of the message. */
		readonly reason?: string
	) {
		super(message);
	}
}

export class OutboundTimeout extends OutboundError {
	override name = "OutboundTimeout";
}

export class OutboundTooLarge extends OutboundError {
	override name = "OutboundTooLarge";

	constructor(readonly limit: number) {
		super(`response exceeds ${limit} bytes`);
	}
}

export interface GuardedRequestOptions {
	method?: Dispatcher.HttpMethod;
	headers?: Record<string, string>;
	body?: string | Buffer;
	/** Caller's cancellation; when it aborts, its reason is what the request rejects with. */
	signal?: AbortSignal;
	maxResponseBytes?: number;
	/** OUTBOUND_ALLOW_HOSTS entries: host names, IPs or CIDRs, each optionally `:port`, reachable although private. */
	allowHosts?: readonly string[];
	maxRedirects?: number;
	/** Bounds connecting, waiting for headers, each body read and the whole exchange, redirects included. */
	timeoutMs?: number;
}

export interface GuardedResponse {
	status: number;
	headers: IncomingHttpHeaders;
	body: Buffer;
	/** The URL that answered, after redirects. */
	url: string;
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
/**
 * Headers still sent after a redirect to another origin. Tenant-configured headers carry secrets
 * (API keys under any name), so everything else stays with the origin it was configured for.
 */
const CROSS_ORIGIN_HEADERS = new Set(["accept", "accept-language", "content-type", "user-agent"]);
const BODY_HEADERS = ["content-type", "content-length", "content-encoding", "content-language"];

function refusedUrl(why: string): OutboundRefused {
	return new OutboundRefused(`outbound URL refused: ${why}`);
}

function refusedAddress(host: string, reason: string): OutboundRefused {
	return new OutboundRefused(`outbound address refused: ${host}`, reason);
}

export function checkedUrl(raw: string, base?: URL): URL {
	if (!URL.canParse(raw, base?.href)) throw refusedUrl("not a valid URL");
	const url = new URL(raw, base);
	if (url.protocol !== "http:" && url.protocol !== "https:") {
		throw refusedUrl(`scheme ${url.protocol} is not allowed`);
	}
	if (url.username || url.password) throw refusedUrl("credentials in the URL are not allowed");
	return url;
}

/**
 * A connector that checks the address and port before every connection. DNS names are resolved by
 * `lookup`, which hands net.connect only checked addresses, so the address connected to is the one
 * checked (no rebinding in between). net.connect skips `lookup` for IP literals; those are checked here
 * first.
 */
export function guardedConnector(guard: AddressGuard, timeoutMs: number): buildConnector.connector {
	const lookupFor =
		(port: number): net.LookupFunction =>
		(hostname, options, callback) => {
			dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
				if (err) return callback(err, []);
				// One refused address refuses the name: a name mixing public and internal addresses is hostile.
				for (const { address } of addresses) {
					const reason = guard.refusal(address, hostname, port);
					if (reason) return callback(refusedAddress(hostname, reason), []);
				}
				if (options.all) return callback(null, addresses);
				callback(null, addresses[0].address, addresses[0].family);
			});
		};
	const connectors = new Map<number, buildConnector.connector>();
	return (options, callback) => {
		const port = Number(options.port) || (options.protocol === "https:" ? 443 : 80);
		if (net.isIP(options.hostname)) {
			const reason = guard.refusal(options.hostname, undefined, port);
			if (reason) return callback(refusedAddress(options.hostname, reason), null);
		}
		let connect = connectors.get(port);
		if (!connect)
			connectors.set(port, (connect = buildConnector({ lookup: lookupFor(port), timeout: timeoutMs })));
		connect(options, callback);
	};
}

/**
 * Reads a body (undici's, or a WHATWG `Response.body`) up to `limit` bytes, and throws
 * OutboundTooLarge past it: leaving the loop cancels the stream, so nothing more is read from the upstream.
 */
export async function readCapped(body: AsyncIterable<Uint8Array> | null, limit: number): Promise<Buffer> {
	const chunks: Uint8Array[] = [];
	let size = 0;
	for await (const chunk of body ?? []) {
		size += chunk.byteLength;
		if (size > limit) throw new OutboundTooLarge(limit);
		chunks.push(chunk);
	}
	return Buffer.concat(chunks, size);
}

function isUndiciTimeout(err: unknown): boolean {
	return (
		err instanceof errors.ConnectTimeoutError ||
		err instanceof errors.HeadersTimeoutError ||
		err instanceof errors.BodyTimeoutError
	);
}

/**
 * Sends one request, following up to `maxRedirects` redirects (each re-checked). Rejects with
 * OutboundRefused, OutboundTimeout, OutboundTooLarge, OutboundError (unreachable, too many redirects),
 * the caller's abort reason, or undici's InvalidArgumentError for malformed requests.
 */
export async function guardedRequest(
	url: string,
	options: GuardedRequestOptions = {}
): Promise<GuardedResponse> {
	const { maxResponseBytes = DEFAULT_MAX_RESPONSE_BYTES, maxRedirects = 3, timeoutMs = 10_000 } = options;
	const deadline = AbortSignal.timeout(timeoutMs);
	const signal = options.signal ? AbortSignal.any([options.signal, deadline]) : deadline;
	// One agent per request: its connector carries this request's allow-list, and no pooled
	// connection outlives the checks made for it.
	const agent = new Agent({
		connect: guardedConnector(new AddressGuard(options.allowHosts), timeoutMs),
		headersTimeout: timeoutMs,
		bodyTimeout: timeoutMs
	});
	let method = options.method ?? "GET";
	let headers: Record<string, string> = { ...options.headers };
	let body = options.body;
	try {
		let target = checkedUrl(url);
		for (let hop = 0; ; hop++) {
			const response = await request(target, { dispatcher: agent, method, headers, body, signal });
			const status = response.statusCode;
			const location = response.headers.location;
			if (!REDIRECT_STATUSES.has(status) || typeof location !== "string") {
				if (Number(response.headers["content-length"]) > maxResponseBytes) {
					throw new OutboundTooLarge(maxResponseBytes);
				}
				const data = await readCapped(response.body, maxResponseBytes);
				return { status, headers: response.headers, body: data, url: target.href };
			}
			await response.body.dump();
			if (hop >= maxRedirects) throw new OutboundError(`more than ${maxRedirects} redirects`);
			const next = checkedUrl(location, target);
			if (next.origin !== target.origin) {
				headers = Object.fromEntries(
					Object.entries(headers).filter(([name]) => CROSS_ORIGIN_HEADERS.has(name.toLowerCase()))
				);
			}
			// As browsers do: 303, and 301/302 after a POST, continue as a GET without the body.
			const becomesGet = status === 303 ? method !== "HEAD" : status <= 302 && method === "POST";
			if (becomesGet) {
				method = "GET";
				body = undefined;
				headers = Object.fromEntries(
					Object.entries(headers).filter(([name]) => !BODY_HEADERS.includes(name.toLowerCase()))
				);
			}
			target = next;
		}
	} catch (err) {
		if (err instanceof OutboundError) throw err;
		if (options.signal?.aborted) throw options.signal.reason;
		if (deadline.aborted || isUndiciTimeout(err)) {
			throw new OutboundTimeout(`no complete answer within ${timeoutMs} ms`, { cause: err });
		}
		if (err instanceof errors.InvalidArgumentError) throw err;
		const code = (err as NodeJS.ErrnoException).code;
		throw new OutboundError(`upstream unreachable${code ? ` (${code})` : ""}`, { cause: err });
	} finally {
		// Also drops the connection of a response left unread (too large, failed).
		await agent.destroy();
	}
}
