import { mkdirSync } from "fs";
import path from "path";
import { type Browser, type BrowserContext, type Page } from "playwright-core";
import { eventually } from "../support/eventually";
import { http, SERVICE_TOKEN, startNode, type TestNode } from "../support/node";

import {
	buildConsole,
	calculatorReady,
	describeWithChromium,
	HOSTILE,
	launchChromium,
	navTo,
	SHOTS,
	TENANT,
	watchPage
} from "../support/console";

// A browser on a shared machine: each step gets more than jest's default.
jest.setTimeout(90000);

beforeAll(buildConsole, 120000);

describeWithChromium("the console in headless Chromium", () => {
	let node: TestNode;
	let browser: Browser;
	let context: BrowserContext;
	let page: Page;
	/** Problems seen by any page: console errors, uncaught exceptions, requests leaving the host, alerts. */
	const problems: string[] = [];
	const watch = (target: Page) => watchPage(target, node.url, problems);
	const nav = navTo;
	const shot = (name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });

	beforeAll(async () => {
		mkdirSync(SHOTS, { recursive: true });
		node = await startNode();
		const hostile = await http(node.url, "POST", "/api/v1/tools", {
			tenant: TENANT,
			body: {
				name: "hostile_description",
				type: "calculator",
				description: HOSTILE,
				metadata: { tags: [HOSTILE] }
			}
		});
		expect(hostile.status).toBe(201);
		await calculatorReady(node.url);
		browser = await launchChromium();
		context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
		page = await context.newPage();
		watch(page);
	}, 120000);

	afterAll(async () => {
		await browser?.close();
		await node?.stop();
	});

	it("signs in with the service token and a tenant, keeping them out of URLs, cookies and local storage", async () => {
		await page.goto(`${node.url}/ui`);
		await page.getByRole("heading", { name: "Tool Registry console" }).waitFor();
		await shot("sign-in");
		await page.getByLabel("API key or service token").fill("wrong-token");
		await page.getByLabel("Tenant").fill(TENANT);
		await page.getByRole("button", { name: "Sign in" }).click();
		await page.getByRole("alert").getByText("Unknown or revoked credential").waitFor();
		await page.getByLabel("API key or service token").fill(SERVICE_TOKEN);
		await page.getByRole("button", { name: "Sign in" }).click();
		await page.getByRole("heading", { name: "Catalog" }).waitFor();
		await page.getByText("Live", { exact: true }).waitFor();
		expect(page.url()).not.toContain(SERVICE_TOKEN);
		expect(await page.evaluate("[document.cookie, localStorage.length]")).toEqual(["", 0]);
		expect(await page.evaluate("sessionStorage.length")).toBe(1);
	});

	it("finds a tool, and shows a hostile description as text", async () => {
		await page.getByText(HOSTILE).first().waitFor();
		expect(await page.locator("img").count()).toBe(0);
		await page.getByLabel("Search").fill("calculator math expression");
		await page.getByRole("button", { name: "Search" }).click();
		await page.getByRole("link", { name: "calculator", exact: true }).waitFor();
		await shot("catalog");
		await page.getByLabel("Search").fill("");
		await page.getByLabel("Type").selectOption("datetime");
		await page.getByRole("link", { name: "datetime", exact: true }).waitFor();
		expect(await page.getByRole("link", { name: "calculator", exact: true }).count()).toBe(0);
		await page.getByLabel("Health").selectOption("unreachable");
		await page.getByText("No tool matches these filters.").waitFor();
		await page.getByLabel("Health").selectOption("");
		await page.getByLabel("Type").selectOption("calculator");
		await page.getByRole("link", { name: "calculator", exact: true }).click();
		await page.getByRole("heading", { name: "calculator", level: 1 }).waitFor();
	});

	it("runs the calculator from its generated form and shows the value", async () => {
		await page.getByLabel("expression").fill("2 + 3 * 4");
		await page.getByRole("button", { name: "Run" }).click();
		const outcome = page.locator(".outcome");
		// Whatever the outcome, the assertion names it (a failed run shows its error).
		await outcome.waitFor();
		expect(await outcome.textContent()).toMatch(/^completed in /);
		expect(JSON.parse((await outcome.locator("pre").textContent())!)).toEqual({ value: 14 });
		await page.getByText("1 calls: 1 completed, 0 failed").waitFor();
		await shot("tool");
	});

	it("shows why a run failed", async () => {
		await page.getByLabel("expression").fill("1 +");
		await page.getByRole("button", { name: "Run" }).click();
		const outcome = page.locator(".outcome-failed");
		await outcome.getByText("failed").waitFor();
		await outcome.getByText(/^tool_error: .+/).waitFor();
	});

	it("queues a task and watches it complete live over /ws", async () => {
		const polled: string[] = [];
		page.on("request", request => {
			if (request.url().includes("/internal/tasks/")) polled.push(request.url());
		});
		await nav(page, "Tasks");
		await page.getByText("No tasks yet").waitFor();
		await page.getByLabel("Tool").selectOption({ label: "calculator" });
		await page.getByLabel("expression").fill("6 * 7");
		await page.getByRole("button", { name: "Queue task" }).click();
		const task = page.locator(".task").first();
		await task.locator(".badge", { hasText: "completed" }).waitFor();
		expect(JSON.parse((await task.locator("pre").textContent())!)).toEqual({ value: 42 });
		expect(polled).toEqual([]);
		await shot("tasks");
		await nav(page, "Events");
		await page.getByText("task_completed").first().waitFor();
		await shot("events");
	});

	it("shows a task's outcome after the live feed comes back, though its events were missed", async () => {
		const api = node.broker.getLocalService("api") as unknown as {
			acceptUiSocket: (req: unknown, socket: { destroy(): void }) => Promise<void>;
			uiSockets: { close(): Promise<void> };
		};
		const accept = api.acceptUiSocket;
		await nav(page, "Tasks");
		await page.getByLabel("Tool").selectOption({ label: "calculator" });
		const before = problems.length;
		// The gateway drops every UI socket and refuses new ones while the task runs.
		api.acceptUiSocket = async (_req, socket) => socket.destroy();
		await api.uiSockets.close();
		await page.locator(".live-closed, .live-connecting").waitFor();
		await page.getByLabel("expression").fill("7 * 8");
		await page.getByRole("button", { name: "Queue task" }).click();
		const task = page.locator(".task").first();
		await task.getByText("pending").waitFor();
		const taskId = (await task.getAttribute("data-task-id"))!;
		await eventually(async () => {
			const stored = await http(node.url, "GET", `/api/v1/internal/tasks/${taskId}`, { tenant: TENANT });
			expect(stored.body.status).toBe("completed");
		});
		expect(await task.locator(".badge").textContent()).toBe("pending");
		api.acceptUiSocket = accept;
		await page.getByText("Live", { exact: true }).waitFor({ timeout: 40000 });
		await task.locator(".badge", { hasText: "completed" }).waitFor();
		expect(JSON.parse((await task.locator("pre").textContent())!)).toEqual({ value: 56 });
		// The browser reports each refused reconnection; those were this test's doing.
		const refused = problems
			.splice(before)
			.filter(problem => !/WebSocket connection to .* failed/.test(problem));
		expect(refused).toEqual([]);
	});

	it("creates a key, shows its secret once, and revokes it", async () => {
		await nav(page, "Keys");
		await page.getByLabel("Name").fill("console test key");
		await page.getByLabel("tools:execute").check();
		await page.getByRole("button", { name: "Create key" }).click();
		const secret = (await page.getByTestId("new-key-secret").textContent())!;
		expect(secret).toMatch(/^trk_/);
		expect((await http(node.url, "GET", "/api/v1/tools?limit=1", { token: secret })).status).toBe(200);
		await shot("keys");
		await page.getByRole("button", { name: "I have stored it" }).click();
		expect(await page.getByText(secret).count()).toBe(0);
		const row = page.locator("tr", { hasText: "console test key" });
		await row.getByRole("button", { name: "Revoke" }).click();
		await row.getByText("revoked").waitFor();
		expect((await http(node.url, "GET", "/api/v1/tools?limit=1", { token: secret })).status).toBe(401);
	});

	it("registers a tool from the generated form and edits it as a new version", async () => {
		await nav(page, "Register");
		// Two fields changed before the form renders again (a fast typist, a pasted value): both are kept.
		await page.getByLabel("Name").waitFor();
		await page.getByLabel("Type").waitFor();
		await page.evaluate(`
			const name = document.querySelector("#definition-name");
			name.value = "console_made";
			name.dispatchEvent(new Event("input", { bubbles: true }));
			const type = document.querySelector("#definition-type");
			type.value = JSON.stringify("calculator");
			type.dispatchEvent(new Event("change", { bubbles: true }));
		`);
		await page.getByLabel("Description").fill("Sums made in the console");
		await page.getByLabel("Tags").pressSequentially("console, made");
		await shot("register");
		await page.getByRole("button", { name: "Register" }).click();
		await page.getByRole("heading", { name: "console_made", level: 1 }).waitFor();
		await page.locator(".facts dd", { hasText: "console, made" }).waitFor();
		await nav(page, "Events");
		await page.getByText("tool_registered").first().waitFor();
		await page.getByRole("button", { name: "Tools" }).click();
		await page.locator(".event summary", { hasText: "console_made (v1)" }).waitFor();
		expect(await page.getByText("task_completed").count()).toBe(0);
		await page.goBack();
		await page.getByRole("heading", { name: "console_made", level: 1 }).waitFor();
		await page.getByRole("link", { name: "Edit" }).click();
		await page.getByRole("button", { name: "JSON" }).click();
		const json = page.getByLabel("Definition (JSON)");
		const definition = JSON.parse(await json.inputValue());
		await json.fill(JSON.stringify({ ...definition, description: "Sums, edited as JSON" }, null, 2));
		await page.getByRole("button", { name: "Save as a new version" }).click();
		await page.locator(".description", { hasText: "Sums, edited as JSON" }).waitFor();
		await page.locator(".facts dd", { hasText: /^2$/ }).waitFor();
		const diff = page.locator("pre.diff");
		await diff.locator(".diff-removed", { hasText: '"description": "Sums made in the console"' }).waitFor();
		await diff.locator(".diff-added", { hasText: '"description": "Sums, edited as JSON"' }).waitFor();
		await shot("tool-versions");
		await page.getByRole("button", { name: "Roll back to v1" }).click();
		await page.locator(".facts dd", { hasText: /^3$/ }).waitFor();
		await page.locator(".description", { hasText: "Sums made in the console" }).waitFor();
		await page.getByRole("button", { name: "Disable" }).click();
		await page.locator(".view-header .badge", { hasText: "disabled" }).waitFor();
		const run = await http(node.url, "POST", "/api/v1/internal/execute", {
			tenant: TENANT,
			body: { tool_name: "console_made", parameters: { expression: "1" } }
		});
		expect(run.status).toBeGreaterThanOrEqual(400);
		await page.getByRole("button", { name: "Enable" }).click();
		await page.locator(".view-header .badge", { hasText: "active" }).waitFor();
		await shot("tool-edited");
	});

	it("reports the API's field errors on a bad definition", async () => {
		await nav(page, "Register");
		await page.getByLabel("Name").fill("9 not a name");
		await page.getByRole("button", { name: "Register" }).click();
		const alert = page.getByRole("alert");
		await alert.getByText("Could not register").waitFor();
		await alert.locator("li code", { hasText: "name" }).waitFor();
		await shot("register-error");
	});

	it("adds an OpenAPI source, refreshes it and deletes it", async () => {
		await nav(page, "Sources");
		await page.getByText("No sources yet").waitFor();
		await page.getByLabel("Type").selectOption("openapi");
		await page.getByLabel("Name").fill("pets");
		const spec = {
			openapi: "3.0.3",
			info: { title: "Pets", version: "1" },
			servers: [{ url: "https://pets.example.com" }],
			paths: {
				"/pets": {
					get: {
						operationId: "listPets",
						summary: "List the pets",
						responses: { "200": { description: "ok" } }
					}
				}
			}
		};
		await page.getByLabel("Or the OpenAPI document (JSON)").fill(JSON.stringify(spec));
		await page.getByRole("button", { name: "Add source" }).click();
		await page.getByText("pets: 1 added.").waitFor();
		const row = page.locator("tr", { hasText: "pets" });
		await row.locator("td", { hasText: /^1$/ }).waitFor();
		await shot("sources");
		await row.getByRole("button", { name: "Refresh" }).click();
		await page.getByText("pets: no changes.").waitFor();
		await row.getByRole("button", { name: "Delete" }).click();
		await page.getByText("pets: deleted with its tools.").waitFor();
		await page.getByText("No sources yet").waitFor();
	});

	it("signs out, forgetting everything, and signs in with an API key, which needs no tenant", async () => {
		const key = await http(node.url, "POST", "/api/v1/keys", {
			tenant: TENANT,
			body: { tenant_id: TENANT, scopes: ["tools:read", "tools:execute"], name: "reader" }
		});
		await page.getByRole("button", { name: "Sign out" }).click();
		await page.getByRole("heading", { name: "Tool Registry console" }).waitFor();
		expect(await page.evaluate("sessionStorage.length")).toBe(0);
		await page.getByLabel("API key or service token").fill(key.body.api_key);
		await page.getByRole("button", { name: "Sign in" }).click();
		await page.getByRole("heading", { name: "Catalog" }).waitFor();
		await page.getByText("Live", { exact: true }).waitFor();
		await page.getByText(HOSTILE).first().waitFor();
		// What the previous sign-in did in this tab is not shown to the next one.
		await nav(page, "Tasks");
		await page.getByText("No tasks yet").waitFor();
		await page.getByRole("button", { name: "Sign out" }).click();
		expect(await page.evaluate("sessionStorage.length")).toBe(0);
	});

	it("lets a key that only manages keys sign in, without a catalog or a live feed", async () => {
		const admin = await http(node.url, "POST", "/api/v1/keys", {
			tenant: TENANT,
			body: { tenant_id: TENANT, scopes: ["keys:admin"], name: "key admin" }
		});
		await page.getByLabel("API key or service token").fill(admin.body.api_key);
		await page.getByRole("button", { name: "Sign in" }).click();
		await page.getByRole("alert").getByText("This credential lacks the 'tools:read' scope").waitFor();
		await page.getByText("No live feed (needs tools:read)").waitFor();
		await nav(page, "Keys");
		await page.getByLabel("Tenant").fill(TENANT);
		await page.getByLabel("tools:read").uncheck();
		await page.getByLabel("keys:admin").check();
		await page.getByRole("button", { name: "Create key" }).click();
		expect(await page.getByTestId("new-key-secret").textContent()).toMatch(/^trk_/);
		await page.getByRole("button", { name: "Sign out" }).click();
	});

	it("saw no console error, no request leaving the host and no alert", () => {
		expect(problems).toEqual([]);
	});
});
