import { eventually } from "../support/eventually";
import { Upstream } from "../support/upstream";
import {
	SECRET,
	port,
	upstream,
	node,
	newTenant,
	json,
	call,
	register,
	execute,
	upstreamUrl,
	externalApi,
	registerAndRun,
	upstreamPaths,
	useRemoteSetup
} from "../support/remote";

/** Tools that call out, end to end (setup: test/support/remote.ts): refused destinations and what reaches an allowed upstream. */

useRemoteSetup();

describe("SSRF through HTTP: refused destinations", () => {
	// PORT is the victims' port, known only once they listen.
	it.each([
		"http://127.0.0.1:PORT/",
		"http://2130706433:PORT/",
		"http://0177.0.0.1:PORT/",
		"http://0x7f.0.0.1:PORT/",
		"http://127.1:PORT/",
		"http://[::1]:PORT/",
		"http://[::ffff:127.0.0.1]:PORT/",
		"http://[::ffff:7f00:1]:PORT/",
		"http://0.0.0.0:PORT/",
		"http://[::]:PORT/",
		"https://127.0.0.1:PORT/",
		"http://127.0.0.1:PORT/{{path}}",
		"http://127.0.0.1:PORT#@127.0.0.2:PORT/",
		"http://127.0.0.3:PORT/",
		"http://169.254.169.254/latest/meta-data/",
		"http://[::ffff:a9fe:a9fe]/latest/meta-data/",
		"http://[fd00:ec2::254]/latest/meta-data/",
		"http://10.0.0.1/",
		"http://192.168.1.1/",
		"http://172.16.0.1/",
		"http://100.64.0.1/",
		"http://[fe80::1]/",
		"http://[fc00::1]/"
	])(
		"refuses the literal address of %s at registration with 422, naming it, and stores nothing",
		async target => {
			const tenant = newTenant();
			const url = target.replaceAll("PORT", String(port));
			const res = await call(node, "POST", "/tools", tenant, externalApi({ url }));
			expect(res.status).toBe(422);
			expect(res.body.data).toEqual([
				{ field: "config.url", message: expect.stringMatching(/^outbound address refused: .+ \(.+\)$/) }
			]);
			expect((await call(node, "GET", "/tools?type=external_api", tenant)).body.items).toEqual([]);
			expect(upstream.received).toEqual([]);
		}
	);

	it("refuses a name that resolves to a refused address before connecting: the probe marks the tool invalid and it never runs", async () => {
		const tenant = newTenant();
		const url = `http://localhost:${port}/`;
		const tool = await register(node, tenant, externalApi({ url }), "invalid");
		expect(tool.body.validation).toMatchObject({
			valid: false,
			kind: "functional",
			errors: [{ field: "config.url", message: expect.stringMatching(/refused/) }]
		});
		const res = await call(node, "POST", "/internal/execute", tenant, {
			tool_id: tool.body.id,
			parameters: { path: "admin" }
		});
		expect(res.status).toBe(409);
		expect(res.body).toMatchObject({ type: "CONFLICT", data: { status: "invalid" } });
		expect(upstream.received).toEqual([]);
	});

	it.each(["/to-victim", "/to-victim-v6", "/to-localhost", "/to-decimal", "/to-metadata", "/to-file"])(
		"refuses a redirect from the allowed upstream (%s)",
		async path => {
			const { result } = await registerAndRun(node, newTenant(), { url: upstreamUrl(path) });
			expect(result).toMatchObject({ status: "failed", error: { type: "tool_error" } });
			expect(result.error.message).toMatch(/^outbound (address|URL) refused: /);
			// The allowed upstream answered the first hop; nothing else was reached.
			expect(upstreamPaths()).toEqual([path]);
		}
	);

	it.each([
		["file:///etc/passwd"],
		["gopher://127.0.0.1:PORT/_GET%20/"],
		["ftp://127.0.0.1:PORT/"],
		["dict://127.0.0.1:PORT/info"],
		["http://user:pass@127.0.0.2:PORT/echo"],
		["http://admin@127.0.0.1:PORT/"],
		["http://127.0.0.2:PORT@127.0.0.1:PORT/"],
		["http://{{host}}:PORT/"],
		["not a url"]
	])("refuses %s at registration with 422 and stores nothing", async target => {
		const tenant = newTenant();
		const url = target.replaceAll("PORT", String(port));
		const res = await call(node, "POST", "/tools", tenant, externalApi({ url }));
		expect(res.status).toBe(422);
		expect(res.body).toMatchObject({ code: 422, type: "VALIDATION_ERROR" });
		expect(res.body.data.map((problem: { field: string }) => problem.field)).toContain("config.url");
		const list = await call(node, "GET", "/tools?type=external_api", tenant);
		expect(list.body.items).toEqual([]);
	});
});

describe("external_api: allowed upstream", () => {
	const forecastParameters = {
		type: "object",
		properties: {
			city: { type: "string" },
			days: { type: "integer" },
			units: { type: "string" },
			user: { type: "string" }
		},
		required: ["city"]
	};
	const forecastConfig = () => ({
		url: upstreamUrl("/echo/forecast/{{city}}?days={{days}}"),
		method: "POST",
		headers: { "X-Api-Key": SECRET, "X-User": "agent-{{user}}" },
		query: { units: "{{units}}", source: "tool-registry" },
		body_template: { location: { city: "{{city}}" }, days: "{{days}}", note: "for {{user}}" },
		response_path: "data.forecast"
	});
	const forecastTool = () => externalApi(forecastConfig(), { parameters: forecastParameters });

	it("sends templated path, query, body and headers upstream and returns response_path", async () => {
		const tenant = newTenant();
		const tool = await register(node, tenant, forecastTool());
		const parameters = { city: "São Paulo/Centro", days: 3, units: "metric", user: "ana" };
		const res = await execute(node, tenant, { tool_id: tool.body.id, parameters, execution_id: "exec-1" });

		expect(res.body).toEqual({
			execution_id: "exec-1",
			tool_id: tool.body.id,
			tool_name: tool.body.name,
			status: "completed",
			result: { status: 200, data: { summary: "sunny", high: 28 } },
			execution_time_ms: expect.any(Number)
		});
		expect(upstream.received).toHaveLength(1);
		const [got] = upstream.received;
		const url = new URL(got.url, "http://upstream");
		expect(got.method).toBe("POST");
		expect(url.pathname).toBe("/echo/forecast/S%C3%A3o%20Paulo%2FCentro");
		expect([...url.searchParams]).toEqual([
			["days", "3"],
			["units", "metric"],
			["source", "tool-registry"]
		]);
		expect(got.headers["x-api-key"]).toBe(SECRET);
		expect(got.headers["x-user"]).toBe("agent-ana");
		expect(got.headers["content-type"]).toBe("application/json");
		expect(JSON.parse(got.body)).toEqual({
			location: { city: "São Paulo/Centro" },
			days: 3,
			note: "for ana"
		});
	});

	it("sends the secret header upstream but never shows it in any read of the tool", async () => {
		const tenant = newTenant();
		const created = await register(node, tenant, forecastTool());
		const id = created.body.id as string;
		const byId = await call(node, "GET", `/tools/${id}`, tenant);
		const list = await call(node, "GET", "/tools?type=external_api", tenant);
		expect(byId.status).toBe(200);
		expect(byId.body.config.headers).toEqual({ "X-Api-Key": "********", "X-User": "********" });
		expect(list.body.items.map((tool: { id: string }) => tool.id)).toEqual([id]);

		// An update that sends the masked read back keeps the stored secret.
		const patched = await call(node, "PATCH", `/tools/${id}`, tenant, {
			description: "renamed",
			config: byId.body.config
		});
		expect(patched.status).toBe(200);
		expect(patched.body.version).toBe(2);
		const run = await execute(node, tenant, { tool_id: id, parameters: { city: "Lima", user: "bo" } });
		expect(run.body.status).toBe("completed");
		expect(upstream.received.map(r => r.headers["x-api-key"])).toEqual([SECRET]);
		expect(upstream.received[0].headers["x-user"]).toBe("agent-bo");

		const reads = [created, byId, list, patched, run, await call(node, "GET", `/tools/${id}`, tenant)];
		for (const read of reads) expect(JSON.stringify(read.body)).not.toContain(SECRET);
	});

	it("keeps a masked secret only while the upstream origin is unchanged", async () => {
		const attacker = await Upstream.start((_req, res) => json(200, { stolen: true })(res), {
			host: "127.0.0.2"
		});
		const attackerReceived = attacker.received;
		try {
			const tenant = newTenant();
			const created = await register(node, tenant, forecastTool());
			const id = created.body.id as string;
			const masked = (await call(node, "GET", `/tools/${id}`, tenant)).body.config;
			const elsewhere = attacker.url("/collect");
			const refusals = [
				// The whole masked config sent back with another origin.
				{ config: { ...masked, url: elsewhere } },
				// Only the URL: the merge patch would keep the stored secret.
				{ config: { url: elsewhere } }
			];
			for (const patch of refusals) {
				const res = await call(node, "PATCH", `/tools/${id}`, tenant, patch);
				expect(res.status).toBe(422);
				expect(res.body.data).toEqual(
					expect.arrayContaining([
						{ field: "config.headers.X-Api-Key", message: "must be given again, since the upstream changed" }
					])
				);
			}
			// Another tool type, where the secret would go wherever that type sends it: no other type takes
			// these headers, so the definition is refused before its secrets are looked at.
			const otherType = await call(node, "PATCH", `/tools/${id}`, tenant, {
				type: "mcp",
				config: { url: elsewhere }
			});
			expect(otherType.status).toBe(422);
			expect(otherType.body.data).toEqual(
				expect.arrayContaining([{ field: "config.headers", message: "is not allowed" }])
			);
			// A change that is invalid in itself says so first, not that its secrets are missing.
			const unknownType = await call(node, "PATCH", `/tools/${id}`, tenant, { type: "nope" });
			expect(unknownType.status).toBe(422);
			expect(unknownType.body.message).toBe("Tool definition is invalid");
			expect(unknownType.body.data).toEqual([expect.objectContaining({ field: "type" })]);
			expect((await call(node, "GET", `/tools/${id}`, tenant)).body.version).toBe(1);
			await execute(node, tenant, { tool_id: id, parameters: { city: "Lima" } });
			expect(attackerReceived).toEqual([]);

			// The same origin, another path: the masked secret still stands for the stored one.
			const samePlace = await call(node, "PATCH", `/tools/${id}`, tenant, {
				config: { ...masked, url: upstreamUrl("/echo/v2/{{city}}") }
			});
			expect(samePlace.status).toBe(200);
			// Another origin with every secret given again: accepted, and only the new secret goes there.
			const moved = await call(node, "PATCH", `/tools/${id}`, tenant, {
				config: { url: elsewhere, headers: { "X-Api-Key": "the-new-key", "X-User": "agent-{{user}}" } }
			});
			expect(moved.status).toBe(200);
			// A changed upstream is probed before it runs again.
			await eventually(async () => {
				const run = await call(node, "POST", "/internal/execute", tenant, {
					tool_id: id,
					parameters: { city: "Lima" }
				});
				expect(run.status).toBe(200);
			});
			// The probe of the new upstream, then the call: only ever the new key.
			const keys = new Set(attackerReceived.map(r => r.headers["x-api-key"]).filter(Boolean));
			expect([...keys]).toEqual(["the-new-key"]);
			expect(JSON.stringify(attackerReceived)).not.toContain(SECRET);
		} finally {
			await attacker.close();
		}
	});

	it("sends unused parameters of a GET as the query and returns a text body as it is", async () => {
		const tenant = newTenant();
		const { result } = await registerAndRun(node, tenant, { url: upstreamUrl("/text") }, { q: "a&b", n: 2 });
		expect(result).toMatchObject({ status: "completed", result: { status: 200, data: "plain hello" } });
		expect(upstream.received.map(r => [r.method, r.url])).toEqual([["GET", "/text?q=a%26b&n=2"]]);
	});

	it("answers 422 for parameters that do not match the schema, before calling the upstream", async () => {
		const tenant = newTenant();
		const tool = await register(node, tenant, forecastTool());
		const res = await call(node, "POST", "/internal/execute", tenant, {
			tool_id: tool.body.id,
			parameters: { city: 7 }
		});
		expect(res.status).toBe(422);
		expect(res.body.type).toBe("VALIDATION_ERROR");
		expect(upstream.received).toEqual([]);
	});

	it("fails a header value with a line break instead of sending an injected header", async () => {
		const tenant = newTenant();
		const config = { url: upstreamUrl("/echo"), headers: { "X-User": "{{user}}" } };
		const { result } = await registerAndRun(node, tenant, config, { user: "ana\r\nX-Injected: yes" });
		expect(result.status).toBe("failed");
		expect(result.error.type).toBe("tool_error");
		expect(upstream.received.filter(r => r.headers["x-injected"] !== undefined)).toEqual([]);
	});

	it.each(["..", "."])("refuses a '%s' parameter that would climb out of its path segment", async value => {
		const tenant = newTenant();
		const config = { url: upstreamUrl("/echo/users/{{id}}/profile") };
		const { result } = await registerAndRun(node, tenant, config, { id: value });
		expect(result).toMatchObject({ status: "failed", error: { type: "tool_error" } });
		expect(upstreamPaths()).toEqual([]);
	});
});
