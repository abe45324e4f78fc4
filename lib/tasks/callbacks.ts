import { createHmac } from "crypto";
import { systemClock, type Clock } from "../clock";
import { guardedRequest, OutboundRefused } from "../outbound/guarded-fetch";

export interface CallbackOptions {
	/** HMAC key; receivers verify `X-Tool-Registry-Signature` with it. Unset = unsigned. */
	secret?: string;
	allowHosts: string[];
	attempts: number;
	baseDelayMs: number;
	timeoutMs: number;
	/** Ends the attempts, the one under way included. */
	signal?: AbortSignal;
	/** Times the backoff between attempts; the system clock unless given. */
	clock?: Clock;
}

/**
 * `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`: the timestamp inside the signed text
 * lets receivers refuse replays of an old delivery.
 */
export function signCallback(
	secret: string,
	body: string,
	timestamp = Math.floor(Date.now() / 1000)
): string {
	const digest = createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex");
	return `t=${timestamp},v1=${digest}`;
}

const sleep = (clock: Clock, ms: number, signal?: AbortSignal) =>
	new Promise<void>(resolve => {
		const timer = clock.setTimeout(done, ms);
		signal?.addEventListener("abort", done, { once: true });
		function done() {
			clock.clear(timer);
			signal?.removeEventListener("abort", done);
			resolve();
		}
	});

/**
 * POSTs a finished task to its `callback_url` through the SSRF-guarded client, retrying network
 * failures and 5xx answers with exponential backoff. Resolves whether some attempt got a 2xx.
 * Refused addresses and 4xx answers are final: retrying cannot change them.
 */
export async function deliverCallback(
	url: string,
	payload: unknown,
	options: CallbackOptions
): Promise<boolean> {
	const body = JSON.stringify(payload);
	for (let attempt = 1; attempt <= options.attempts && !options.signal?.aborted; attempt++) {
		try {
			const response = await guardedRequest(url, {
				method: "POST",
				headers: {
					"content-type": "application/json",
					...(options.secret ? { "x-tool-registry-signature": signCallback(options.secret, body) } : {})
				},
				body,
				allowHosts: options.allowHosts,
				maxRedirects: 0,
				timeoutMs: options.timeoutMs,
				maxResponseBytes: 64 * 1024,
				signal: options.signal
			});
			if (response.status < 300) return true;
			if (response.status < 500) return false;
		} catch (err) {
			if (err instanceof OutboundRefused) return false;
		}
		if (attempt < options.attempts)
			await sleep(options.clock ?? systemClock, options.baseDelayMs * 2 ** (attempt - 1), options.signal);
	}
	return false;
}
