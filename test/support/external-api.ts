import dns from "node:dns";
import type { ServerResponse } from "node:http";
import net from "node:net";

import { type ToolContext, ToolFailure } from "../../tools/base";
import { externalApiTool } from "../../tools/external-api";
import type { JsonObject } from "../../types/wire";
import { redirect, streamPaced, Upstream, type PacedStream, type Received } from "./upstream";

/**
 * The setup of the external_api tool suites. Allowed upstreams listen on 127.0.0.2 and 127.0.0.3
 * (Linux routes all of 127/8 to loopback) and are opened with OUTBOUND_ALLOW_HOSTS; a forbidden
 * listener on 127.0.0.1, on the same port as the upstream, counts connections and must never get one.
 * Non-loopback targets (10.x, 169.254.x, ...) must be refused before any connection is attempted:
 * nothing here may leave the machine.
 */

export const HUGE_BYTES = 5 * 1024 * 1024;

export let port: number;
export let upstream: Upstream;
let otherOrigin: Upstream;
let forbidden: Upstream;
/** Another service on the allowed upstream's address, which only a port-less entry opens. */
export let side: Upstream;
/** What every stand-in received in the running test (`at` tells which one). */
export let received: Received[] = [];
/** What the server saw of the last `/huge` response. */
export let huge: PacedStream;

function route({ path }: Received, res: ServerResponse): void {
	if (path.startsWith("/echo")) {
		res.writeHead(200, { "Content-Type": "application/json; charset=utf-8" });
		res.end(JSON.stringify({ ok: true, nested: { items: [{ id: 1 }, { id: 2 }] } }));
	} else if (path === "/text") {
		res.writeHead(200, { "Content-Type": "text/plain" });
		res.end("hello");
	} else if (path === "/fail") {
		res.writeHead(500, { "Content-Type": "application/json" });
		res.end('{"error":"boom"}');
	} else if (path === "/slow") {
		const timer = setTimeout(() => res.end("late"), 3000);
		res.on("close", () => clearTimeout(timer));
	} else if (path === "/huge") {
		huge = streamPaced(res, HUGE_BYTES, "application/octet-stream", 5);
	} else if (path === "/declared-huge") {
		res.writeHead(200, { "Content-Length": String(50 * 1024 * 1024) });
		res.write("x");
	} else if (path === "/to-loopback") redirect(res, 302, `http://127.0.0.1:${port}/`);
	else if (path === "/to-localhost") redirect(res, 301, `http://localhost:${port}/`);
	else if (path === "/to-metadata") redirect(res, 307, "http://169.254.169.254/latest/meta-data/");
	else if (path === "/to-file") redirect(res, 302, "file:///etc/passwd");
	else if (path === "/to-same") redirect(res, 302, "/echo/same");
	else if (path === "/to-other") redirect(res, 307, `http://127.0.0.3:${port}/echo/other`);
	else if (path === "/see-other") redirect(res, 303, "/echo/after");
	else if (path === "/loop") redirect(res, 302, "/loop");
	else if (path === "/to-side-port") redirect(res, 302, `http://127.0.0.2:${side.port}/echo/side`);
	else if (path === "/to-side-port-by-name")
		redirect(res, 302, `http://upstream.test:${side.port}/echo/side`);
	else {
		res.writeHead(404);
		res.end();
	}
}

/** Starts the stand-ins for the suite; checks after each test that the forbidden listener saw nothing. */
export function useStandIns(): void {
	beforeAll(async () => {
		upstream = await Upstream.start(route, { host: "127.0.0.2" });
		port = upstream.port;
		otherOrigin = await Upstream.start(route, { host: "127.0.0.3", port });
		forbidden = await Upstream.victim("127.0.0.1", port);
		side = await Upstream.start(route, { host: "127.0.0.2" });
	});

	afterAll(async () => {
		await Promise.all([upstream, otherOrigin, forbidden, side].map(server => server?.close()));
	});

	beforeEach(() => {
		received = [];
		for (const server of [upstream, otherOrigin, side]) server.received = received;
	});

	afterEach(() => {
		jest.restoreAllMocks();
		expect(forbidden.connections).toBe(0);
	});
}

export const ALLOWED = ["127.0.0.2", "127.0.0.3/32"];

export function context(
	options: { allow?: string[]; timeoutMs?: number; signal?: AbortSignal } = {}
): ToolContext {
	return {
		tenant_id: "t1",
		agent_id: null,
		execution_id: "e1",
		signal: options.signal ?? new AbortController().signal,
		timeout_ms: options.timeoutMs ?? 2000,
		call: async () => {
			throw new Error("unused");
		},
		env: { outbound_allow_hosts: options.allow ?? ALLOWED }
	};
}

export const upstreamUrl = (path: string): string => upstream.url(path);

export const run = (config: JsonObject, params: JsonObject = {}, ctx = context()) =>
	externalApiTool.execute(params, config, ctx);

export async function failure(
	config: JsonObject,
	params: JsonObject = {},
	ctx = context()
): Promise<ToolFailure> {
	const err: unknown = await run(config, params, ctx).then(
		() => undefined,
		(e: unknown) => e
	);
	expect(err).toBeInstanceOf(ToolFailure);
	return err as ToolFailure;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, addresses: dns.LookupAddress[]) => void;

/** Answers chosen names from `records` (later calls take later entries); other names resolve for real. */
export function fakeDns(records: Record<string, string[][]>) {
	const real = dns.lookup;
	const calls: string[] = [];
	const fake = (hostname: string, options: dns.LookupAllOptions, callback: LookupCallback) => {
		const answers = records[hostname];
		if (!answers) return real(hostname, options, callback);
		calls.push(hostname);
		const addresses = answers[Math.min(calls.filter(name => name === hostname).length, answers.length) - 1];
		const answer = addresses.map(address => ({ address, family: net.isIP(address) }));
		process.nextTick(() => callback(null, answer));
	};
	jest.spyOn(dns, "lookup").mockImplementation(fake as unknown as typeof dns.lookup);
	return calls;
}
