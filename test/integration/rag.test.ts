import Ajv2020 from "ajv/dist/2020";

import { type ToolContext, ToolFailure } from "../../tools/base";
import { ragQueryTool, ragSearchTool } from "../../tools/rag";
import { closedPort, json, redirect, Upstream, type Reply } from "../support/upstream";

/** The stand-in orchestrator's answer of `status` with `payload`. */
const answer =
	(status: number, payload: unknown): Reply =>
	(_req, res) =>
		json(res, status, payload);

let upstream: Upstream;
let baseUrl: string;

/** What the stand-in orchestrator saw, JSON bodies parsed. */
const received = () =>
	upstream.received.map(({ method, url, headers, body }) => ({
		method,
		url,
		headers,
		body: JSON.parse(body)
	}));

beforeAll(async () => {
	upstream = await Upstream.start(answer(200, {}));
	baseUrl = upstream.url();
});

afterAll(() => upstream.close());

beforeEach(() => {
	upstream.received = [];
	upstream.reply = answer(200, { answer: "42", sources: [{ id: "doc-1", score: 0.9 }] });
});

function context(env: Partial<ToolContext["env"]> = {}, timeoutMs = 2000): ToolContext {
	return {
		tenant_id: "t1",
		agent_id: null,
		execution_id: "e1",
		signal: AbortSignal.timeout(timeoutMs),
		timeout_ms: timeoutMs,
		call: async () => {
			throw new Error("unused");
		},
		env: { orchestrator_url: baseUrl, service_token: "svc-secret", outbound_allow_hosts: [], ...env }
	};
}

async function failure(promise: Promise<unknown>): Promise<ToolFailure> {
	const err: unknown = await promise.then(
		() => undefined,
		(e: unknown) => e
	);
	expect(err).toBeInstanceOf(ToolFailure);
	return err as ToolFailure;
}

describe("rag tools against a stand-in orchestrator", () => {
	it("rag_query POSTs the tenant and parameters with the service token and tenant header", async () => {
		const result = await ragQueryTool.execute(
			{ query: "what is the answer?", top_k: 3, filters: { lang: "en" } },
			{},
			context()
		);
		expect(result).toEqual({ answer: "42", sources: [{ id: "doc-1", score: 0.9 }] });
		expect(received()).toHaveLength(1);
		const [request] = received();
		expect(request.method).toBe("POST");
		expect(request.url).toBe("/api/v1/rag/query");
		expect(request.headers.authorization).toBe("Bearer svc-secret");
		expect(request.headers["x-tenant-id"]).toBe("t1");
		expect(request.headers["content-type"]).toBe("application/json");
		expect(request.body).toEqual({
			tenant_id: "t1",
			query: "what is the answer?",
			top_k: 3,
			filters: { lang: "en" }
		});
	});

	it("rag_search uses the search path and fills collection_id and top_k from config", async () => {
		await ragSearchTool.execute({ query: "invoices" }, { collection_id: "c-9", top_k: 7 }, context());
		expect(received()[0].url).toBe("/api/v1/rag/search");
		expect(received()[0].body).toEqual({
			tenant_id: "t1",
			query: "invoices",
			collection_id: "c-9",
			top_k: 7
		});
	});

	it("prefers the parameters over config and never lets them change the tenant", async () => {
		await ragSearchTool.execute(
			{ query: "q", collection_id: "mine", top_k: 2, tenant_id: "t2" },
			{ collection_id: "default", top_k: 7 },
			context()
		);
		expect(received()[0].body).toEqual({ tenant_id: "t1", query: "q", collection_id: "mine", top_k: 2 });
		expect(received()[0].headers["x-tenant-id"]).toBe("t1");
	});

	it("uses a custom endpoint from config, under an orchestrator URL with a path and a slash", async () => {
		await ragQueryTool.execute(
			{ query: "q" },
			{ endpoint: "/v2/rag/ask" },
			context({ orchestrator_url: `${baseUrl}/orchestrator/` })
		);
		expect(received()[0].url).toBe("/orchestrator/v2/rag/ask");
	});

	it("keeps an endpoint that looks like a host on the orchestrator", async () => {
		await ragQueryTool.execute({ query: "q" }, { endpoint: "//evil.example/steal" }, context());
		expect(received()[0].url).toBe("//evil.example/steal");
	});

	it("refuses an endpoint that is not a path, even in a config that skipped validation", async () => {
		for (const endpoint of ["@evil.example/steal", "http://evil.example/steal", ".evil.example/x", 42]) {
			const err = await failure(ragQueryTool.execute({ query: "q" }, { endpoint }, context()));
			expect(err.type).toBe("tool_error");
			expect(err.message).toMatch(/config.endpoint must be a path/);
		}
		expect(received()).toHaveLength(0);
	});

	it("refuses an endpoint with dot segments, which could leave the orchestrator's base path", async () => {
		const orchestrator_url = `${baseUrl}/orchestrator`;
		for (const endpoint of ["/../admin", "/api/v1/rag/../../../admin", "/./x", "/a/.."]) {
			const err = await failure(
				ragQueryTool.execute({ query: "q" }, { endpoint }, context({ orchestrator_url }))
			);
			expect(err.type).toBe("tool_error");
			expect(err.message).toMatch(/config.endpoint must stay under ORCHESTRATOR_URL/);
		}
		expect(received()).toHaveLength(0);
	});

	it("sends no Authorization header when no service token is set", async () => {
		await ragQueryTool.execute({ query: "q" }, {}, context({ service_token: undefined }));
		expect(received()[0].headers.authorization).toBeUndefined();
		expect(received()[0].headers["x-tenant-id"]).toBe("t1");
	});

	it("wraps a response that is not an object", async () => {
		upstream.reply = answer(200, [{ id: "doc-1" }]);
		expect(await ragSearchTool.execute({ query: "q" }, {}, context())).toEqual({ data: [{ id: "doc-1" }] });
	});

	it("reports an upstream 500 as upstream_error", async () => {
		upstream.reply = answer(500, { error: "boom" });
		const err = await failure(ragQueryTool.execute({ query: "q" }, {}, context()));
		expect(err.type).toBe("upstream_error");
		expect(err.message).toBe("orchestrator answered 500");
	});

	it("reports invalid JSON as upstream_error", async () => {
		upstream.reply = (_req, res) => {
			res.writeHead(200, { "Content-Type": "application/json" });
			res.end("{not json");
		};
		const err = await failure(ragQueryTool.execute({ query: "q" }, {}, context()));
		expect(err.type).toBe("upstream_error");
		expect(err.message).toMatch(/invalid JSON/);
	});

	it("refuses a response larger than 5 MiB", async () => {
		upstream.reply = (_req, res) => {
			res.writeHead(200, { "Content-Type": "application/json" });
			// Chunked (no Content-Length), so the cap on the bytes read is what stops it.
			const chunk = "x".repeat(1024 * 1024);
			res.write(`{"data":"`);
			for (let i = 0; i < 6; i++) res.write(chunk);
			res.end(`"}`);
		};
		const err = await failure(ragQueryTool.execute({ query: "q" }, {}, context()));
		expect(err.type).toBe("upstream_error");
		expect(err.message).toMatch(/exceeds 5242880 bytes/);
	});

	it("reports a slow orchestrator as timeout", async () => {
		upstream.reply = () => undefined; // never answers
		const started = Date.now();
		const err = await failure(ragQueryTool.execute({ query: "q" }, {}, context({}, 200)));
		expect(err.type).toBe("timeout");
		expect(err.message).toBe("orchestrator did not answer within 200 ms");
		expect(Date.now() - started).toBeLessThan(2000);
	});

	it("times out on its own deadline even if the caller's signal never aborts", async () => {
		upstream.reply = () => undefined;
		const ctx = { ...context({}, 200), signal: new AbortController().signal };
		const err = await failure(ragSearchTool.execute({ query: "q" }, {}, ctx));
		expect(err.type).toBe("timeout");
	});

	it("reports a refused connection as upstream_error", async () => {
		const port = await closedPort();
		const err = await failure(
			ragQueryTool.execute({ query: "q" }, {}, context({ orchestrator_url: `http://127.0.0.1:${port}` }))
		);
		expect(err.type).toBe("upstream_error");
		expect(err.message).toMatch(/ECONNREFUSED/);
	});

	it("does not follow a redirect with the service token", async () => {
		upstream.reply = (_req, res) => redirect(res, 307, "http://127.0.0.2:1/elsewhere");
		const err = await failure(ragQueryTool.execute({ query: "q" }, {}, context()));
		expect(err.type).toBe("upstream_error");
		expect(received()).toHaveLength(1);
	});

	it("reports a missing ORCHESTRATOR_URL as tool_error without calling anything", async () => {
		const ctx = context({ orchestrator_url: undefined });
		const err = await failure(ragQueryTool.execute({ query: "q" }, {}, ctx));
		expect(err.type).toBe("tool_error");
		expect(err.message).toBe("ORCHESTRATOR_URL is not configured");
		expect(received()).toHaveLength(0);
	});
});

describe("rag tool schemas", () => {
	// Plain ajv: what the schemas mean, independent of the registry's pattern engine.
	const ajv = new Ajv2020({ strict: true });

	it.each([ragQueryTool, ragSearchTool])("$type config accepts only a path endpoint", tool => {
		const validate = ajv.compile(tool.configSchema);
		expect(validate({})).toBe(true);
		expect(validate({ endpoint: "/api/v2/rag/query", collection_id: "c", top_k: 100 })).toBe(true);
		for (const endpoint of ["/v1.2/rag/query.json", "/.well-known/rag", "//evil.example/steal"])
			expect([endpoint, validate({ endpoint })]).toEqual([endpoint, true]);
		for (const config of [
			{ endpoint: "http://evil.example/x" },
			{ endpoint: "@evil.example/x" },
			{ endpoint: "/x?y=1" },
			{ endpoint: "/../admin" },
			{ endpoint: "/api/v1/rag/../../admin" },
			{ endpoint: "/./x" },
			{ endpoint: "/a/.." },
			{ top_k: 0 },
			{ top_k: 101 },
			{ url: "http://x" }
		]) {
			expect(validate(config)).toBe(false);
		}
	});

	it.each([ragQueryTool, ragSearchTool])("$type parameters require a bounded query", tool => {
		const validate = ajv.compile(tool.parameters);
		expect(validate({ query: "q", collection_id: "c", top_k: 5, filters: { a: 1 } })).toBe(true);
		expect(validate({})).toBe(false);
		expect(validate({ query: "x".repeat(4001) })).toBe(false);
		expect(validate({ query: "q", tenant_id: "t2" })).toBe(false);
	});
});
