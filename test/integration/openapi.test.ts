import { existsSync } from "fs";
import { compileErrors, validate } from "@readme/openapi-parser";
import { chromium, type Browser } from "playwright-core";
import { API_ROUTES } from "../../lib/api-routes";
import { buildOpenApi } from "../../lib/openapi";
import { http, startNode, type TestNode } from "../support/node";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
/** Locally a missing browser skips the page test loudly; CI installs Debian's chromium and requires it. */
const describeWithChromium = existsSync(CHROMIUM) || process.env.CI ? describe : describe.skip;
if (!existsSync(CHROMIUM) && !process.env.CI)
	process.stdout.write(`\n*** ${CHROMIUM} not found: the /docs browser test is SKIPPED ***\n`);

const toOpenApiPath = (path: string) => path.replace(/:([A-Za-z_]+)/g, "{$1}");

describe("OpenAPI document", () => {
	let node: TestNode;
	let document: any;

	beforeAll(async () => {
		node = await startNode();
		document = (await http(node.url, "GET", "/openapi.json", { token: null })).body;
	});

	afterAll(() => node.stop());

	it("is a valid OpenAPI 3.1 document", async () => {
		const result = await validate(structuredClone(document));
		expect(result.valid ? "" : compileErrors(result)).toBe("");
		expect(document.openapi).toBe("3.1.0");
	});

	it("documents every route the gateway serves and nothing it does not", () => {
		const api = node.broker.getLocalService("api") as unknown as {
			aliases: { method: string; fullPath: string }[];
		};
		const served = api.aliases.map(a => `${a.method.toLowerCase()} ${toOpenApiPath(a.fullPath)}`).sort();
		const documented = Object.entries(document.paths as Record<string, Record<string, unknown>>)
			.flatMap(([path, operations]) => Object.keys(operations).map(method => `${method} ${path}`))
			.sort();
		expect(document["x-undocumented"]).toBeUndefined();
		expect(documented).toEqual([...served, "get /ws"].sort());
		for (const [route, alias] of Object.entries(API_ROUTES)) {
			const [method, path] = route.split(" ");
			const operation = document.paths[toOpenApiPath(`/api/v1${path}`)][method.toLowerCase()];
			expect(operation).toMatchObject({ operationId: alias.action, summary: alias.summary });
			expect(Object.keys(operation.responses)).toContain(String(alias.status ?? 200));
		}
	});

	it("lists a route served without documentation as undocumented", () => {
		const built = buildOpenApi([{ method: "GET", fullPath: "/secret-admin" }], () => undefined, "test");
		expect(built["x-undocumented"]).toEqual(["GET /secret-admin"]);
	});

	it("describes parameters from the actions' own params", () => {
		const list = document.paths["/api/v1/tools"].get;
		const query = list.parameters
			.filter((p: { in: string }) => p.in === "query")
			.map((p: { name: string }) => p.name);
		expect(query).toEqual(expect.arrayContaining(["type", "tag", "status", "limit", "cursor"]));
		const submit =
			document.paths["/api/v1/internal/tasks"].post.requestBody.content["application/json"].schema;
		expect(submit.properties.priority).toMatchObject({ type: "integer", minimum: 0, maximum: 9 });
		const register = document.paths["/api/v1/tools"].post.requestBody.content["application/json"].schema;
		expect(register.properties.name.pattern).toBe("^[a-zA-Z][a-zA-Z0-9_-]{0,63}$");
	});

	it("sends a visitor of / to the console, and tells any other client where everything is", async () => {
		const res = await fetch(`${node.url}/`, { redirect: "manual" });
		expect(res.status).toBe(302);
		expect(res.headers.get("location")).toBe("/ui");
		expect(await res.json()).toEqual({
			ui: "/ui",
			docs: "/docs",
			openapi: "/openapi.json",
			health: "/health",
			api: "/api/v1"
		});
		expect(document.paths["/"].get.responses).toHaveProperty("302");
	});

	it("serves only the docs page's own assets, under a policy that lets them load nothing else", async () => {
		for (const path of ["/docs", "/docs/swagger-ui.css", "/docs/swagger-ui-bundle.js", "/docs/init.js"]) {
			const res = await fetch(`${node.url}${path}`);
			expect([path, res.status]).toEqual([path, 200]);
			expect(res.headers.get("content-security-policy")).toMatch(/default-src 'none'.*script-src 'self';/);
			expect(res.headers.get("x-content-type-options")).toBe("nosniff");
			await res.arrayBuffer();
		}
		for (const file of ["..%2Fpackage.json", "package.json", "index.html"]) {
			const res = await fetch(`${node.url}/docs/${file}`);
			expect([file, res.status]).toEqual([file, 404]);
		}
	});
});

describeWithChromium("the /docs page in headless Chromium", () => {
	let node: TestNode;
	let browser: Browser;

	beforeAll(async () => {
		node = await startNode({ services: ["api", "registry", "validator"] });
		browser = await chromium.launch({
			executablePath: CHROMIUM,
			args: [
				"--no-sandbox",
				"--disable-gpu",
				"--disable-background-networking",
				"--disable-component-update",
				"--disable-sync"
			]
		});
	}, 60000);

	afterAll(async () => {
		await browser?.close();
		await node.stop();
	});

	it("renders every endpoint offline, loading nothing from another origin", async () => {
		const page = await browser.newPage();
		const foreign: string[] = [];
		const errors: string[] = [];
		page.on("request", request => {
			if (!request.url().startsWith(node.url)) foreign.push(request.url());
		});
		// A load or style the page's policy refuses shows up as a console error.
		page.on("console", message => {
			if (message.type() === "error") errors.push(`${message.text()} ${message.location().url}`);
		});
		await page.goto(`${node.url}/docs`);
		await page.waitForSelector(".opblock", { timeout: 20000 });
		const paths = await page.$$eval(".opblock-summary-path", nodes =>
			nodes.map(n => n.getAttribute("data-path"))
		);
		for (const route of Object.keys(API_ROUTES))
			expect(paths).toContain(toOpenApiPath(`/api/v1${route.split(" ")[1]}`));
		expect(await page.title()).toBe("Tool Registry API");
		expect(foreign).toEqual([]);
		expect(errors).toEqual([]);
	}, 60000);
});
