import { readdirSync, readFileSync } from "fs";
import path from "path";
import WebSocket from "ws";
import { http, SERVICE_TOKEN, startNode, type TestNode } from "../support/node";
import { calculatorTool } from "../support/definitions";

import { buildConsole, ROOT, TENANT } from "../support/console";

/** The /ui page as the gateway serves it (setup: test/support/console.ts); the browser tests are in console.test.ts. */

jest.setTimeout(90000);

beforeAll(buildConsole, 120000);

describe("the /ui page", () => {
	let node: TestNode;

	beforeAll(async () => {
		node = await startNode({ services: ["api", "keys", "registry", "validator"] });
	});

	afterAll(() => node.stop());

	it("is served with a strict Content-Security-Policy and no inline script", async () => {
		const res = await fetch(`${node.url}/ui`);
		expect(res.status).toBe(200);
		const csp = res.headers.get("content-security-policy") ?? "";
		expect(csp).toContain("default-src 'none'");
		expect(csp).toContain("script-src 'self'");
		expect(csp).not.toContain("unsafe-inline");
		expect(csp).toContain("frame-ancestors 'none'");
		expect(res.headers.get("x-content-type-options")).toBe("nosniff");
		const html = await res.text();
		const scripts = html.match(/<script\b[^>]*>/g) ?? [];
		expect(scripts.length).toBeGreaterThan(0);
		for (const tag of scripts) expect(tag).toMatch(/\ssrc="\/ui\/assets\/[^"]+\.js"/);
		expect(html).not.toMatch(/<script\b[^>]*>[^<]+<\/script>/);
		expect(html).not.toMatch(/https?:\/\//);
	});

	it("is built by npm install and npm run build into dist/console, served as built and naming no other host", async () => {
		const scripts = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")).scripts;
		expect(scripts.prepare).toBe("npm run build");
		expect(scripts.build).toMatch(/ && npm run build:console$/);
		expect(scripts["build:console"]).toContain("--config ui/vite.config.mts");
		// buildConsole (above) ran that config; the page /ui serves is the one it wrote.
		const dist = path.join(ROOT, "dist/console");
		const html = await (await fetch(`${node.url}/ui`)).text();
		expect(html).toBe(readFileSync(path.join(dist, "index.html"), "utf8"));
		const files = readdirSync(dist, { recursive: true, withFileTypes: true }).filter(entry => entry.isFile());
		for (const file of files) {
			const text = readFileSync(path.join(file.parentPath, file.name), "utf8");
			// The only absolute URLs are XML namespace names (SVG, MathML, XHTML), never fetched.
			const urls = (text.match(/https?:\/\/[^\s"'`)]+/g) ?? []).filter(
				url => !url.startsWith("http://www.w3.org/")
			);
			expect([file.name, urls]).toEqual([file.name, []]);
		}
	});

	it("serves only the bundle's own files", async () => {
		const html = await (await fetch(`${node.url}/ui`)).text();
		const asset = /src="(\/ui\/assets\/[^"]+)"/.exec(html)![1];
		const res = await fetch(node.url + asset);
		expect([res.status, res.headers.get("content-type")]).toEqual([
			200,
			"application/javascript; charset=utf-8"
		]);
		expect(res.headers.get("cache-control")).toContain("immutable");
		for (const file of [
			"..%2Fpackage.json",
			"%2E%2E%2Fpackage.json",
			"assets/..%2F..%2Fpackage.json",
			"nope.js"
		]) {
			const missing = await fetch(`${node.url}/ui/${file}`);
			expect([file, missing.status]).toEqual([file, 404]);
		}
	});

	it("disables and enables a tool of the tenant, never a global one", async () => {
		const created = await http(node.url, "POST", "/api/v1/tools", {
			tenant: TENANT,
			body: calculatorTool("switched")
		});
		const path = `/api/v1/tools/${created.body.id}/status`;
		const off = await http(node.url, "PUT", path, { tenant: TENANT, body: { status: "disabled" } });
		expect([off.status, off.body.status]).toEqual([200, "disabled"]);
		const bad = await http(node.url, "PUT", path, { tenant: TENANT, body: { status: "invalid" } });
		expect(bad.status).toBe(422);
		const other = await http(node.url, "PUT", path, { tenant: "someone-else", body: { status: "active" } });
		expect(other.status).toBe(404);
		const on = await http(node.url, "PUT", path, { tenant: TENANT, body: { status: "active" } });
		expect([on.status, on.body.status]).toEqual([200, "active"]);
		const pending = await http(node.url, "POST", "/api/v1/tools", {
			tenant: TENANT,
			body: {
				name: "unprobed",
				description: "Not probed yet",
				type: "external_api",
				config: { url: "https://unprobed.example.com/x" }
			}
		});
		// No executor on this node: the probe waits in the queue, so the tool stays unvalidated.
		expect(pending.body.status).toBe("pending_validation");
		const skip = await http(node.url, "PUT", `/api/v1/tools/${pending.body.id}/status`, {
			tenant: TENANT,
			body: { status: "active" }
		});
		expect([skip.status, skip.body.message]).toEqual([
			409,
			"Only a disabled tool can be enabled; this one is pending_validation"
		]);
		const calculator = (
			await http(node.url, "GET", "/api/v1/tools?type=calculator", { tenant: TENANT })
		).body.items.find((tool: { name: string }) => tool.name === "calculator");
		const global = await http(node.url, "PUT", `/api/v1/tools/${calculator.id}/status`, {
			tenant: TENANT,
			body: { status: "disabled" }
		});
		expect(global.status).toBeGreaterThanOrEqual(400);
		expect(global.status).toBeLessThan(500);
	});

	it("takes the /ws credential from subprotocols, and never echoes it", async () => {
		const encode = (text: string) => Buffer.from(text).toString("base64url");
		const socket = new WebSocket(`${node.url.replace("http", "ws")}/ws`, [
			"tool-registry",
			`tool-registry.bearer.${encode(SERVICE_TOKEN)}`,
			`tool-registry.tenant.${encode(TENANT)}`
		]);
		await new Promise((resolve, reject) => {
			socket.once("open", resolve);
			socket.once("error", reject);
		});
		expect(socket.protocol).toBe("tool-registry");
		socket.close();

		const refused = new WebSocket(`${node.url.replace("http", "ws")}/ws`, [
			"tool-registry",
			`tool-registry.bearer.${encode("not-a-credential")}`
		]);
		const status = await new Promise(resolve =>
			refused.once("unexpected-response", (_req, res) => resolve(res.statusCode))
		);
		expect(status).toBe(401);
	});
});
