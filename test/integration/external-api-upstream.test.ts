import { createAjv } from "../../lib/json-schema";
import { AddressGuard } from "../../lib/outbound/address-guard";
import { guardedRequest, OutboundRefused } from "../../lib/outbound/guarded-fetch";
import { externalApiTool } from "../../tools/external-api";
import {
	ALLOWED,
	HUGE_BYTES,
	context,
	failure,
	fakeDns,
	huge,
	port,
	received,
	run,
	upstreamUrl,
	useStandIns
} from "../support/external-api";
import { closedPort } from "../support/upstream";

/** The external_api tool against local stand-ins (setup: test/support/external-api.ts): calls to an allowed upstream, its failures, guardedRequest and config checks. */

useStandIns();

describe("allowed upstream", () => {
	it("templates path, query and header values and sends unused parameters as the query", async () => {
		const config = {
			url: `http://127.0.0.2:${port}/echo/{{user}}/items?fixed=1&q={{q}}`,
			headers: { "X-Api-Key": "secret-{{tenant}}", Accept: "application/json" },
			query: { lang: "{{lang}}", static: "s" },
			response_path: "nested.items.1"
		};
		const params = { user: "a b/c", q: "x&y=z", lang: "es", tenant: "acme", extra: 5, tags: ["t1", "t2"] };
		expect(await run(config, params)).toEqual({ status: 200, data: { id: 2 } });

		expect(received).toHaveLength(1);
		const [got] = received;
		const url = new URL(got.url, "http://upstream");
		expect(got.method).toBe("GET");
		expect(url.pathname).toBe("/echo/a%20b%2Fc/items");
		expect([...url.searchParams]).toEqual([
			["fixed", "1"],
			["q", "x&y=z"],
			["lang", "es"],
			["static", "s"],
			["extra", "5"],
			["tags", "t1"],
			["tags", "t2"]
		]);
		expect(got.headers["x-api-key"]).toBe("secret-acme");
		expect(got.headers.accept).toBe("application/json");
		expect(got.body).toBe("");
	});

	it("templates body_template: whole placeholders keep their JSON value, others interpolate", async () => {
		const config = {
			url: upstreamUrl("/echo"),
			method: "POST",
			headers: { Authorization: "Bearer tenant-secret" },
			body_template: {
				name: "{{name}}",
				count: "{{ count }}",
				greeting: "hello {{name}}, {{count}}",
				list: ["{{count}}", "x", 7],
				meta: { tags: "{{tags}}", missing: "{{nope}}" }
			}
		};
		const result = await run(config, { name: "Ana", count: 3, tags: ["a"] });
		expect(result).toEqual({ status: 200, data: { ok: true, nested: { items: [{ id: 1 }, { id: 2 }] } } });
		const [got] = received;
		expect(got.method).toBe("POST");
		expect(got.headers.authorization).toBe("Bearer tenant-secret");
		expect(got.headers["content-type"]).toBe("application/json");
		expect(JSON.parse(got.body)).toEqual({
			name: "Ana",
			count: 3,
			greeting: "hello Ana, 3",
			list: [3, "x", 7],
			meta: { tags: ["a"] }
		});
	});

	it.each(["POST", "PUT", "PATCH"])("%s without body_template sends the parameters as JSON", async method => {
		await run({ url: upstreamUrl("/echo/{{id}}"), method }, { id: 7, note: "n" });
		const [got] = received;
		expect(got).toMatchObject({ method, url: "/echo/7" });
		expect(JSON.parse(got.body)).toEqual({ id: 7, note: "n" });
	});

	it("DELETE without body_template sends the parameters as the query", async () => {
		await run({ url: upstreamUrl("/echo/{{id}}"), method: "DELETE" }, { id: 7, hard: true });
		expect(received[0]).toMatchObject({ method: "DELETE", url: "/echo/7?hard=true", body: "" });
	});

	it("returns text bodies as text and a missing response_path as null", async () => {
		expect(await run({ url: upstreamUrl("/text") })).toEqual({ status: 200, data: "hello" });
		expect(await run({ url: upstreamUrl("/echo"), response_path: "nested.nothing.0" })).toEqual({
			status: 200,
			data: null
		});
	});

	it("reaches a private address through an allowed host name", async () => {
		fakeDns({ "api.internal.test": [["127.0.0.2"]] });
		const result = await run(
			{ url: `http://api.internal.test:${port}/echo` },
			{},
			context({ allow: ["API.internal.test"] })
		);
		expect(result.status).toBe(200);
		expect(received[0].headers.host).toBe(`api.internal.test:${port}`);
	});

	it("follows a same-origin redirect with the secret headers", async () => {
		await run({ url: upstreamUrl("/to-same"), headers: { "X-Api-Key": "k" } });
		expect(received.map(r => [r.url, r.headers["x-api-key"]])).toEqual([
			["/to-same", "k"],
			["/echo/same", "k"]
		]);
	});

	it("drops secret headers on a redirect to another origin", async () => {
		const headers = { "X-Api-Key": "k", Authorization: "Bearer t", Cookie: "c=1", Accept: "text/plain" };
		await run({ url: upstreamUrl("/to-other"), method: "PUT", headers }, { a: 1 });
		const [first, second] = received;
		expect(first.headers).toMatchObject({ "x-api-key": "k", authorization: "Bearer t", cookie: "c=1" });
		expect(second).toMatchObject({ at: "127.0.0.3", method: "PUT", url: "/echo/other", body: '{"a":1}' });
		expect(second.headers["x-api-key"]).toBeUndefined();
		expect(second.headers.authorization).toBeUndefined();
		expect(second.headers.cookie).toBeUndefined();
		expect(second.headers.accept).toBe("text/plain");
	});

	it("continues a 303 after a POST as a GET without the body", async () => {
		await run({ url: upstreamUrl("/see-other"), method: "POST" }, { a: 1 });
		expect(received.map(r => [r.method, r.url, r.body, r.headers["content-type"]])).toEqual([
			["POST", "/see-other", '{"a":1}', "application/json"],
			["GET", "/echo/after", "", undefined]
		]);
	});

	it("gives up after 3 redirects", async () => {
		const err = await failure({ url: upstreamUrl("/loop") });
		expect(err).toMatchObject({ type: "upstream_error", message: "more than 3 redirects" });
		expect(received).toHaveLength(4);
	});
});

describe("upstream failures", () => {
	it("reports an upstream 500 as upstream_error", async () => {
		const err = await failure({ url: upstreamUrl("/fail") });
		expect(err).toMatchObject({ type: "upstream_error", message: "upstream answered 500" });
	});

	it("times out a slow upstream at the tool's timeout_ms", async () => {
		const started = Date.now();
		const err = await failure({ url: upstreamUrl("/slow") }, {}, context({ timeoutMs: 300 }));
		expect(err.type).toBe("timeout");
		expect(Date.now() - started).toBeLessThan(2000);
	});

	it("stops when the execution's signal aborts", async () => {
		const controller = new AbortController();
		setTimeout(() => controller.abort(), 100);
		const err = await failure({ url: upstreamUrl("/slow") }, {}, context({ signal: controller.signal }));
		expect(err.type).toBe("timeout");
	});

	it("caps a huge response and stops reading it", async () => {
		const err = await failure({ url: upstreamUrl("/huge") });
		expect(err).toMatchObject({ type: "upstream_error", message: "response exceeds 1048576 bytes" });
		await huge.closed;
		expect(huge.completed).toBe(false);
		expect(huge.written).toBeLessThan(HUGE_BYTES);
	});

	it("applies max_response_bytes from the config", async () => {
		const err = await failure({ url: upstreamUrl("/huge"), max_response_bytes: 100_000 });
		expect(err).toMatchObject({ type: "upstream_error", message: "response exceeds 100000 bytes" });
		await huge.closed;
		expect(huge.completed).toBe(false);
	});

	it("refuses a declared Content-Length over the cap without reading", async () => {
		const err = await failure({ url: upstreamUrl("/declared-huge") });
		expect(err).toMatchObject({ type: "upstream_error", message: "response exceeds 1048576 bytes" });
	});

	it("reports a refused connection as upstream_error", async () => {
		const freePort = await closedPort("127.0.0.2");
		const err = await failure({ url: `http://127.0.0.2:${freePort}/` });
		expect(err).toMatchObject({ type: "upstream_error", message: "upstream unreachable (ECONNREFUSED)" });
	});
});

describe("guardedRequest", () => {
	it("returns status, headers, body and the final URL", async () => {
		const response = await guardedRequest(upstreamUrl("/to-same"), { allowHosts: ALLOWED });
		expect(response.status).toBe(200);
		expect(response.url).toBe(upstreamUrl("/echo/same"));
		expect(response.headers["content-type"]).toMatch(/json/);
		expect(JSON.parse(response.body.toString()).ok).toBe(true);
	});

	it("honours maxRedirects: 0 follows no redirect", async () => {
		const request = guardedRequest(upstreamUrl("/to-same"), { allowHosts: ALLOWED, maxRedirects: 0 });
		await expect(request).rejects.toThrow("more than 0 redirects");
		expect(received).toHaveLength(1);
	});

	it("rejects refusals with OutboundRefused carrying the reason", async () => {
		const err: unknown = await guardedRequest(`http://127.0.0.1:${port}/`).catch((e: unknown) => e);
		expect(err).toBeInstanceOf(OutboundRefused);
		expect(err).toMatchObject({ message: "outbound address refused: 127.0.0.1", reason: "loopback" });
	});

	it("rejects with the caller's abort reason", async () => {
		const reason = new Error("shutting down");
		const err: unknown = await guardedRequest(upstreamUrl("/slow"), {
			allowHosts: ALLOWED,
			signal: AbortSignal.abort(reason)
		}).catch((e: unknown) => e);
		expect(err).toBe(reason);
	});
});

describe("config checks", () => {
	const NO_ALLOWED_HOSTS = new AddressGuard([]);
	const ajv = createAjv();
	const validate = ajv.compile(externalApiTool.configSchema);

	it.each([
		{ url: "https://api.example.com/v1/{{id}}" },
		{
			url: "http://api.example.com/",
			method: "POST",
			headers: { "X-Api-Key": "k" },
			query: { a: "{{a}}" },
			body_template: { x: ["{{x}}"] },
			response_path: "data.items.0",
			max_response_bytes: 5 * 1024 * 1024
		}
	])("accepts %j", config => {
		expect(validate(config)).toBe(true);
		expect(externalApiTool.checkConfig?.(config, NO_ALLOWED_HOSTS)).toEqual([]);
	});

	it.each([
		{},
		{ url: "ftp://example.com/" },
		{ url: "http://example.com/", method: "HEAD" },
		{ url: "http://example.com/", headers: { "Bad Header": "x" } },
		{ url: "http://example.com/", query: { a: 1 } },
		{ url: "http://example.com/", max_response_bytes: 5 * 1024 * 1024 + 1 },
		{ url: "http://example.com/", response_path: "a..b" },
		{ url: "http://example.com/", extra: true }
	])("the schema rejects %j", config => {
		expect(validate(config)).toBe(false);
	});

	it.each([
		["not a url", "must be a valid URL"],
		["file:///etc/passwd", "must use http or https"],
		["gopher://example.com/", "must use http or https"],
		["http://user:pass@example.com/", "must not contain credentials; use headers"],
		["http://{{host}}.example.com/", "placeholders are allowed in the path and query only"],
		["http://example.com:{{port}}/", "must be a valid URL"]
	])("checkConfig refuses %s", (url, message) => {
		expect(externalApiTool.checkConfig?.({ url }, NO_ALLOWED_HOSTS)).toEqual([
			{ field: "config.url", message }
		]);
	});

	it.each([
		["http://10.0.0.1/", "10.0.0.1 (private"],
		["http://127.0.0.1:8080/x", "127.0.0.1 (loopback"],
		["http://[::1]/", "::1 (loopback"],
		["http://169.254.169.254/latest/meta-data", "169.254.169.254 (metadata"]
	])(
		"checkConfig refuses the literal address of %s, unless OUTBOUND_ALLOW_HOSTS opens it",
		(url, refused) => {
			expect(externalApiTool.checkConfig?.({ url }, NO_ALLOWED_HOSTS)).toEqual([
				{ field: "config.url", message: expect.stringContaining(`outbound address refused: ${refused}`) }
			]);
			const host = new URL(url).host;
			expect(externalApiTool.checkConfig?.({ url }, new AddressGuard([host]))).toEqual([]);
		}
	);

	it("leaves a host name to be judged when the tool runs, and admits a public address", () => {
		expect(externalApiTool.checkConfig?.({ url: "http://localhost:8080/" }, NO_ALLOWED_HOSTS)).toEqual([]);
		expect(externalApiTool.checkConfig?.({ url: "http://8.8.8.8/" }, NO_ALLOWED_HOSTS)).toEqual([]);
	});
});
