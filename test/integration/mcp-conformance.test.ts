import { execFile } from "child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "fs";
import http, { type IncomingMessage, type ServerResponse } from "http";
import type { AddressInfo } from "net";
import { tmpdir } from "os";
import path from "path";
import { promisify } from "util";
import { eventually } from "../support/eventually";
import { SERVICE_TOKEN, http as rest, startNode, type TestNode } from "../support/node";

/**
 * The official MCP conformance suite (`@modelcontextprotocol/conformance`) against a live node.
 * Its client connects without credentials, so a loopback proxy adds the service token and a tenant
 * and passes everything else (Host and Origin included) through unchanged.
 */
const runFile = promisify(execFile);
const root = path.join(__dirname, "../..");
const SUITE = require.resolve("@modelcontextprotocol/conformance/dist/index.js", { paths: [root] });
const NODE20_SHIM = path.join(root, "test/support/conformance/node20.mjs");
const TENANT = `conformance-${process.pid}`;

/**
 * The server scenarios that apply to a tool registry. The rest need a server that writes its
 * own tools' content (image, audio, embedded resources), asks the client mid-call (sampling,
 * elicitation, progress, per-tool logging) or offers resources, prompts or completions: see docs/mcp.md.
 */
const SCENARIOS = [
	"server-initialize",
	"server-session-lifecycle",
	"ping",
	"logging-set-level",
	"tools-list",
	"json-schema-2020-12",
	"server-sse-polling",
	"server-sse-multiple-streams",
	"dns-rebinding-protection",
	"tools-call-error"
];

/**
 * The suite's fixture tools, offered the way any cluster service offers a tool: a Moleculer action
 * that declares `tool` becomes a global `moleculer_action` tool.
 */
const FIXTURE_TOOLS = {
	name: "conformance",
	actions: {
		reconnection: {
			tool: { name: "test_reconnection", description: "Answers at once (SSE polling scenario)" },
			handler: () => ({ message: "reconnection test completed" })
		},
		failing: {
			tool: { name: "test_error_handling", description: "Always fails (error reporting scenario)" },
			handler: () => {
				throw new Error("This tool intentionally returns an error for testing");
			}
		}
	}
};

interface Check {
	id: string;
	status: "SUCCESS" | "FAILURE" | "WARNING" | "INFO" | "SKIPPED";
	errorMessage?: string;
}

function startCredentialProxy(target: string): Promise<http.Server> {
	const { hostname, port } = new URL(target);
	const server = http.createServer((req: IncomingMessage, res: ServerResponse) => {
		const upstream = http.request(
			{
				host: hostname,
				port,
				method: req.method,
				path: req.url,
				headers: { ...req.headers, authorization: `Bearer ${SERVICE_TOKEN}`, "x-tenant-id": TENANT }
			},
			answer => {
				res.writeHead(answer.statusCode ?? 502, answer.headers);
				answer.pipe(res);
			}
		);
		upstream.on("error", () => res.destroy());
		res.on("close", () => upstream.destroy());
		req.pipe(upstream);
	});
	return new Promise(resolve => server.listen(0, "127.0.0.1", () => resolve(server)));
}

async function runScenario(url: string, scenario: string): Promise<Check[]> {
	const outputDir = mkdtempSync(path.join(tmpdir(), "mcp-conformance-"));
	try {
		await runFile(
			process.execPath,
			[
				...["--import", NODE20_SHIM, SUITE, "server", "--url", url, "--scenario", scenario],
				...["--spec-version", "2025-11-25", "-o", outputDir]
			],
			{ cwd: root, timeout: 60000 }
		).catch((err: { stdout?: string; stderr?: string }) => {
			// The suite exits non-zero when a check fails; the checks file says which.
			if (!findChecks(outputDir).length) throw new Error(`${scenario}: ${err.stderr || err.stdout}`);
		});
		return findChecks(outputDir).flatMap(file => JSON.parse(readFileSync(file, "utf8")) as Check[]);
	} finally {
		rmSync(outputDir, { recursive: true, force: true });
	}
}

function findChecks(dir: string): string[] {
	return readdirSync(dir, { recursive: true, encoding: "utf8" })
		.filter(file => file.endsWith("checks.json"))
		.map(file => path.join(dir, file));
}

describe("the official MCP conformance suite", () => {
	let node: TestNode;
	let proxy: http.Server;
	let url: string;

	beforeAll(async () => {
		node = await startNode();
		node.broker.createService(FIXTURE_TOOLS);
		await eventually(async () => {
			const listed = await rest(node.url, "GET", "/api/v1/tools?type=moleculer_action", { tenant: TENANT });
			const names = (listed.body.items as { name: string }[]).map(tool => tool.name);
			expect(names).toEqual(expect.arrayContaining(["test_reconnection", "test_error_handling"]));
		});
		const registered = await rest(node.url, "POST", "/api/v1/tools", {
			tenant: TENANT,
			body: {
				name: "json_schema_2020_12_tool",
				description: "Tool with JSON Schema 2020-12 features",
				type: "calculator",
				parameters: {
					$schema: "https://json-schema.org/draft/2020-12/schema",
					type: "object",
					$defs: {
						address: {
							type: "object",
							properties: { street: { type: "string" }, city: { type: "string" } }
						}
					},
					properties: { name: { type: "string" }, address: { $ref: "#/$defs/address" } },
					additionalProperties: false
				}
			}
		});
		expect(registered.status).toBe(201);
		proxy = await startCredentialProxy(node.url);
		url = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/mcp`;
	});

	afterAll(async () => {
		proxy?.closeAllConnections();
		await new Promise(resolve => proxy?.close(resolve));
		await node?.stop();
	});

	it.each(SCENARIOS)("passes %s with no failure and no warning", async scenario => {
		const checks = await runScenario(url, scenario);
		expect(checks.some(check => check.status === "SUCCESS")).toBe(true);
		const problems = checks
			.filter(check => check.status === "FAILURE" || check.status === "WARNING")
			.map(check => `${check.status} ${check.id}: ${check.errorMessage ?? ""}`);
		expect(problems).toEqual([]);
	});
});
