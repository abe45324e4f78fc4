import { mkdirSync } from "fs";
import { createServer } from "http";
import type { AddressInfo } from "net";
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
	SHOTS,
	signIn,
	watchPage
} from "../support/console";

/**
 * The console view by view, in headless Chromium (console.test.ts walks the main journeys): the
 * keyboard alone, labels, empty and error states, every catalog filter, the tool page's figures,
 * editing through the form and diffing versions, cancelling a task, a key's last use, and every
 * view at a desktop's and a phone's size without sideways scrolling or layout jumps.
 */

jest.setTimeout(90000);

beforeAll(buildConsole, 120000);

/** A tenant of its own: nothing any other suite does shows up in its empty lists. */
const TENANT = "acme-console-views";

/** Every view, as the hash routes reach it (`{tool}` is the id of the tool `tagged_sum`). */
const VIEWS = [
	"catalog",
	"register",
	"tools/{tool}",
	"tools/{tool}/edit",
	"tasks",
	"events",
	"keys",
	"sources"
];

/** Layout shifts not caused by the user's input, as Chromium measures them (the CLS metric's entries). */
const RECORD_SHIFTS = `
	window.__shifts = [];
	new PerformanceObserver(list => {
		for (const entry of list.getEntries())
			if (!entry.hadRecentInput)
				window.__shifts.push({
					value: entry.value,
					nodes: entry.sources.map(s => s.node ? s.node.nodeName + "." + (s.node.className || "") : "?").join(" ")
				});
	}).observe({ type: "layout-shift", buffered: true });
`;

/** What a screen reader and a keyboard need from a view: names for every control, links and headings. */
const A11Y_PROBLEMS = `(() => {
	const problems = [];
	const shown = el => el.getClientRects().length > 0;
	const text = el => (el.getAttribute("aria-label") || el.textContent || "").trim();
	for (const el of document.querySelectorAll("input, select, textarea")) {
		if (el.type === "hidden" || !shown(el)) continue;
		const labelled = [...(el.labels || [])].some(label => label.textContent.trim()) ||
			(el.getAttribute("aria-label") || "").trim() || el.getAttribute("aria-labelledby");
		if (!labelled) problems.push("no label: " + el.outerHTML.slice(0, 80));
	}
	for (const el of document.querySelectorAll("button, a[href]"))
		if (shown(el) && !text(el)) problems.push("no name: " + el.outerHTML.slice(0, 80));
	for (const el of document.querySelectorAll("[aria-labelledby], [aria-describedby]"))
		for (const id of ((el.getAttribute("aria-labelledby") || "") + " " + (el.getAttribute("aria-describedby") || "")).split(/\\s+/))
			if (id && !document.getElementById(id)) problems.push("refers to a missing #" + id);
	const ids = [...document.querySelectorAll("[id]")].map(el => el.id);
	for (const id of new Set(ids.filter((id, i) => ids.indexOf(id) !== i))) problems.push("duplicate id " + id);
	if (document.querySelectorAll("h1").length !== 1) problems.push("h1 count " + document.querySelectorAll("h1").length);
	if (!document.documentElement.lang) problems.push("no lang");
	return problems;
})()`;

/** Controls reaching past the sides of the screen (in a table scrolled sideways, say): there should be none. */
const CONTROLS_OFF_SCREEN = `[...document.querySelectorAll("main button, main a[href], main input, main select, main textarea")]
	.filter(el => el.getClientRects().length > 0)
	.filter(el => el.getBoundingClientRect().left < 0 || el.getBoundingClientRect().right > document.documentElement.clientWidth)
	.map(el => el.outerHTML.slice(0, 80))`;

/** The focused element, as `tag|name` (its label, aria-label or text). */
const FOCUSED = `(() => {
	const el = document.activeElement;
	const label = el.labels && el.labels[0] ? el.labels[0].textContent : el.getAttribute("aria-label") || el.textContent;
	return el.tagName.toLowerCase() + "|" + (label || "").trim().slice(0, 60);
})()`;

describeWithChromium("the console's views in headless Chromium", () => {
	let node: TestNode;
	let browser: Browser;
	let context: BrowserContext;
	let page: Page;
	const problems: string[] = [];
	const ids: Record<string, string> = {};

	const shot = (name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
	const route = (view: string) => view.replace("{tool}", ids.tagged_sum);
	/** A view's data has arrived: nothing in it says "Loading…". */
	const settled = (target: Page) =>
		target.locator("main", { hasText: "Loading…" }).waitFor({ state: "detached" });
	/** Opens a view afresh (the same hash again would keep the view and its state). */
	const open = async (target: Page, view: string) => {
		const url = `${node.url}/ui#/${route(view)}`;
		await (target.url() === url ? target.reload() : target.goto(url));
		await target.locator("main h1").waitFor();
		await settled(target);
	};
	const register = async (body: Record<string, unknown>) => {
		const created = await http(node.url, "POST", "/api/v1/tools", { tenant: TENANT, body });
		expect(created.status).toBe(201);
		ids[body.name as string] = created.body.id;
		return created.body.id as string;
	};

	/** Saves the editor; fails with the console's alert when the save is refused. */
	const save = async () => {
		await page.getByRole("button", { name: "Save as a new version" }).click();
		await page.locator("#tool-title").or(page.getByRole("alert")).first().waitFor();
		const refused = page.getByRole("alert");
		if (await refused.count()) throw new Error(`not saved: ${await refused.first().textContent()}`);
	};

	/** Presses Tab until the focused element is the wanted one; fails naming where focus went. */
	const tabTo = async (want: RegExp, key: "Tab" | "Shift+Tab" = "Tab", limit = 40) => {
		const seen: string[] = [];
		for (let i = 0; i < limit; i++) {
			await page.keyboard.press(key);
			const focused = (await page.evaluate(FOCUSED)) as string;
			if (want.test(focused)) return;
			seen.push(focused);
		}
		throw new Error(`Tab never reached ${want}; focus went through ${seen.join(", ")}`);
	};

	beforeAll(async () => {
		mkdirSync(SHOTS, { recursive: true });
		// Sources may reach this machine: the MCP server that does not answer is on 127.0.0.1.
		node = await startNode({ settings: { outboundAllowHosts: ["127.0.0.1"] } });
		const calc = { type: "calculator" };
		await register({ ...calc, name: "hostile_views", description: HOSTILE, metadata: { tags: [HOSTILE] } });
		await register({
			...calc,
			name: "tagged_sum",
			description: "Adds up the ledger",
			metadata: { tags: ["finance"] }
		});
		const sleepy = await register({ ...calc, name: "sleepy_sum", description: "Switched off" });
		const off = await http(node.url, "PUT", `/api/v1/tools/${sleepy}/status`, {
			tenant: TENANT,
			body: { status: "disabled" }
		});
		expect(off.status).toBe(200);
		const flaky = await register({ ...calc, name: "flaky_feed", description: "Its upstream is down" });
		await node.broker.call(
			"registry.recordHealth",
			{
				id: flaky,
				health: { state: "unreachable", checked_at: new Date().toISOString(), error: "connect ECONNREFUSED" }
			},
			{ meta: { tenant_id: TENANT } }
		);
		await calculatorReady(node.url);
		browser = await launchChromium();
		context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
		await context.addInitScript(RECORD_SHIFTS);
		page = await context.newPage();
		watchPage(page, node.url, problems);
		// CSRF: every API call carries its credential in a header, and no cookie ever goes along.
		page.on("request", async request => {
			if (!request.url().includes("/api/v1/")) return;
			const headers = await request.allHeaders();
			if (!headers.authorization?.startsWith("Bearer ")) problems.push(`no bearer: ${request.url()}`);
			if (headers.cookie) problems.push(`cookie sent: ${request.url()}`);
		});
	}, 120000);

	afterAll(async () => {
		await browser?.close();
		await node?.stop();
	});

	it("signs in, moves between views and runs a tool with the keyboard alone", async () => {
		await page.goto(`${node.url}/ui`);
		await page.getByRole("heading", { name: "Tool Registry console" }).waitFor();
		expect(await page.evaluate(A11Y_PROBLEMS)).toEqual([]);
		await tabTo(/^input\|API key or service token$/);
		await page.keyboard.type(SERVICE_TOKEN);
		await tabTo(/^input\|Tenant$/);
		await page.keyboard.type(TENANT);
		await page.keyboard.press("Enter");
		await page.getByRole("heading", { name: "Catalog" }).waitFor();
		await page.getByText("Live", { exact: true }).waitFor({ timeout: 60000 });

		await tabTo(/^a\|Skip to content$/);
		// What has keyboard focus is marked.
		expect(await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")).toBe("solid");
		await page.keyboard.press("Enter");
		expect(await page.evaluate("document.activeElement.id")).toBe("main");
		await tabTo(/^a\|Tasks$/, "Shift+Tab");
		await page.keyboard.press("Enter");
		await page.getByRole("heading", { name: "Tasks", level: 1 }).waitFor();
		// After navigating, focus starts at the new view's heading.
		await page.locator("#tasks-title:focus").waitFor();

		await tabTo(/^a\|Catalog$/, "Shift+Tab");
		await page.keyboard.press("Enter");
		await page.getByRole("heading", { name: "Catalog", level: 1 }).waitFor();
		await tabTo(/^input\|Tag$/);
		await page.keyboard.type("finance");
		await page.keyboard.press("Enter");
		await page.getByRole("link", { name: "tagged_sum", exact: true }).waitFor();
		await tabTo(/^a\|tagged_sum$/);
		await page.keyboard.press("Enter");
		await page.locator("#tool-title:focus").waitFor();
		await tabTo(/^textarea\|expression/);
		await page.keyboard.type("6 * 7");
		await tabTo(/^button\|Run$/);
		await page.keyboard.press("Enter");
		const outcome = page.locator(".outcome");
		await outcome.waitFor();
		expect(await outcome.textContent()).toMatch(/^completed in /);
		expect(JSON.parse((await outcome.locator("pre").textContent())!)).toEqual({ value: 42 });
	});

	it("labels every control, names every button and link, and keeps ids unique, in every view", async () => {
		for (const view of VIEWS) {
			await open(page, view);
			expect([view, await page.evaluate(A11Y_PROBLEMS)]).toEqual([view, []]);
		}
	});

	it("says so when a list is empty", async () => {
		await open(page, "tasks");
		await page.getByText("No tasks yet. Queue one above").waitFor();
		await open(page, "keys");
		await page.getByText("No keys yet.").waitFor();
		await open(page, "sources");
		await page.getByText("No sources yet. Add an MCP server").waitFor();
		await open(page, `tools/${ids.hostile_views}`);
		await page.getByText("Not run yet by this tenant.").waitFor();
		await open(page, "catalog");
		await page.getByLabel("Search").fill("nothing at all matches this zzzz");
		await page.getByLabel("Tag").fill("no-such-tag");
		await page.getByRole("button", { name: "Search" }).click();
		await page.getByText("No tool matches these filters.").waitFor();
		await shot("catalog-empty");
	});

	it("filters the catalog by tag, status and health", async () => {
		await open(page, "catalog");
		const names = () => page.locator(".tool-name").allTextContents();
		// Search text goes to the discovery API agents use.
		await page.getByLabel("Search").fill("ledger");
		const [discover] = await Promise.all([
			page.waitForRequest(request => request.url().endsWith("/api/v1/registry/discover")),
			page.getByRole("button", { name: "Search" }).click()
		]);
		expect(discover.postDataJSON()).toMatchObject({ query: "ledger" });
		await page.getByLabel("Search").fill("");
		await page.getByLabel("Tag").fill("finance");
		await page.getByRole("button", { name: "Search" }).click();
		await eventually(async () => expect(await names()).toEqual(["tagged_sum"]));
		await page.getByLabel("Tag").fill("");
		await page.getByLabel("Status").selectOption("disabled");
		await eventually(async () => expect(await names()).toEqual(["sleepy_sum"]));
		await page.getByLabel("Status").selectOption("");
		await page.getByLabel("Health").selectOption("unreachable");
		await eventually(async () => expect(await names()).toEqual(["flaky_feed"]));
		await page.locator(".tool-card .badge", { hasText: "unreachable" }).waitFor();
		await shot("catalog-filtered");
		await page.getByRole("link", { name: "flaky_feed", exact: true }).click();
		await page.locator("#health-title + p .badge", { hasText: "unreachable" }).waitFor();
		await page.locator(".panel .error-text", { hasText: "connect ECONNREFUSED" }).waitFor();
	});

	it("shows a tool's definition, health, usage with a latency chart, and a run's result with its timing", async () => {
		await open(page, `tools/${ids.hostile_views}`);
		expect(await page.locator("p.description").textContent()).toBe(HOSTILE);
		expect(await page.locator("img").count()).toBe(0);
		await page.locator("#health-title + p .badge").waitFor();
		const definition = JSON.parse((await page.getByLabel("Tool definition").textContent())!);
		expect(definition).toMatchObject({ name: "hostile_views", description: HOSTILE, type: "calculator" });
		for (const expression of ["1 + 1", "32 * 32"]) {
			await page.getByLabel("expression").fill(expression);
			await page.getByRole("button", { name: "Run" }).click();
			await page.locator(".outcome pre", { hasText: expression === "1 + 1" ? "2" : "1024" }).waitFor();
		}
		expect(await page.locator(".outcome p").textContent()).toMatch(
			/^completed in [\d.]+ m?s \(round trip [\d.]+ m?s\)$/
		);
		await page.getByText("2 calls: 2 completed, 0 failed").waitFor();
		const chart = page.getByRole("img", { name: /^Latency: average [\d.]+ m?s, p95 [\d.]+ m?s, max/ });
		await chart.waitFor();
		const bars = await chart.locator("rect").evaluateAll(rects => rects.map(r => r.getAttribute("width")));
		expect(bars).toHaveLength(5);
		for (const width of bars) expect(Number(width)).toBeGreaterThan(0);
		await shot("tool-detail");
	});

	it("edits a tool through its generated form, then diffs any two of its versions", async () => {
		await open(page, "tools/{tool}");
		await page.getByRole("link", { name: "Edit" }).click();
		await page.getByRole("heading", { name: "Edit tagged_sum", level: 1 }).waitFor();
		expect(await page.getByLabel("Description").inputValue()).toBe("Adds up the ledger");
		await shot("edit");
		await page.getByLabel("Description").fill("Adds up the ledger, monthly");
		await save();
		await page.locator(".description", { hasText: "Adds up the ledger, monthly" }).waitFor();
		await page.locator(".facts dd", { hasText: /^2$/ }).waitFor();
		await page.getByRole("link", { name: "Edit" }).click();
		await page.getByRole("heading", { name: "Edit tagged_sum", level: 1 }).waitFor();
		await page.getByLabel("Timeout (ms)").fill("2500");
		await page.getByLabel("Tags").fill("finance, monthly");
		await save();
		await page.locator(".facts dd", { hasText: /^3$/ }).waitFor();
		await page.locator(".facts dd", { hasText: "2500 ms" }).waitFor();
		await page.locator(".facts dd", { hasText: "finance, monthly" }).waitFor();
		const stored = await http(node.url, "GET", `/api/v1/tools/${ids.tagged_sum}`, { tenant: TENANT });
		expect(stored.body).toMatchObject({
			version: 3,
			timeout_ms: 2500,
			metadata: { tags: ["finance", "monthly"] }
		});

		const versionRows = page.locator("#versions-title ~ .table-wrap tbody tr");
		await versionRows.nth(2).waitFor();
		expect(await versionRows.count()).toBe(3);
		const diff = page.locator("pre.diff");
		await diff.locator(".diff-added", { hasText: '"timeout_ms": 2500' }).waitFor();
		await page.getByLabel("Compare version").selectOption("1");
		await page.getByLabel("with version").selectOption("3");
		await diff.locator(".diff-removed", { hasText: '"description": "Adds up the ledger"' }).waitFor();
		await diff.locator(".diff-added", { hasText: '"description": "Adds up the ledger, monthly"' }).waitFor();
		await diff.locator(".diff-added", { hasText: '"monthly"' }).waitFor();
		await page.getByLabel("Compare version").selectOption("3");
		await page.getByText("Choose two different versions.").waitFor();
		await shot("tool-diff");
	});

	it("shows the API's own error message, word for word", async () => {
		const body = { type: "calculator", name: "tagged_sum", description: "A second one" };
		const refused = await http(node.url, "POST", "/api/v1/tools", { tenant: TENANT, body });
		expect(refused.status).toBeGreaterThanOrEqual(400);
		await open(page, "register");
		await page.getByLabel("Name").fill(body.name);
		await page.getByLabel("Description").fill(body.description);
		await page.getByRole("button", { name: "Register" }).click();
		const alert = page.getByRole("alert");
		await alert.getByText("Could not register").waitFor();
		expect(await alert.locator("p").textContent()).toBe(refused.body.message);
		expect(await alert.locator(".muted").textContent()).toBe(` (${refused.status} ${refused.body.type})`);
	});

	it("cancels a pending task from the browser", async () => {
		const executor = node.broker.getLocalService("executor") as unknown as {
			workers: { queue: { claim: (...args: unknown[]) => Promise<unknown> } };
		};
		const queue = executor.workers.queue;
		const claim = queue.claim;
		// No worker claims anything meanwhile, so the task stays pending until it is cancelled.
		queue.claim = async () => [];
		try {
			await open(page, "tasks");
			await page.getByLabel("Tool").selectOption({ label: "tagged_sum" });
			await page.getByLabel("expression").fill("9 * 9");
			await page.getByRole("button", { name: "Queue task" }).click();
			const task = page.locator(".task").first();
			await task.locator(".badge", { hasText: "pending" }).waitFor();
			const taskId = (await task.getAttribute("data-task-id"))!;
			await task.getByRole("button", { name: "Cancel" }).click();
			await task.locator(".badge", { hasText: "cancelled" }).waitFor();
			expect(await task.getByRole("button", { name: "Cancel" }).count()).toBe(0);
			const stored = await http(node.url, "GET", `/api/v1/internal/tasks/${taskId}`, { tenant: TENANT });
			expect(stored.body.status).toBe("cancelled");
			await shot("tasks-cancelled");
		} finally {
			queue.claim = claim;
		}
	});

	it("shows when a key was last used", async () => {
		await open(page, "keys");
		await page.getByLabel("Name").fill("used key");
		await page.getByRole("button", { name: "Create key" }).click();
		const secret = (await page.getByTestId("new-key-secret").textContent())!;
		const row = page.locator("tr", { hasText: "used key" });
		expect(await row.locator("td").nth(5).textContent()).toBe("never");
		expect((await http(node.url, "GET", "/api/v1/tools?limit=1", { token: secret })).status).toBe(200);
		const keyId = (await row.getAttribute("data-key-id"))!;
		// The use is recorded after the answer: wait for the API to list it, then read the view again.
		const used = await eventually(async () => {
			const keys = await http(node.url, "GET", "/api/v1/keys", { tenant: TENANT });
			const key = keys.body.items.find((item: { key_id: string }) => item.key_id === keyId);
			expect(key.last_used_at).toEqual(expect.any(String));
			return key.last_used_at as string;
		});
		await open(page, "events");
		await open(page, "keys");
		expect(await page.getByTestId("new-key-secret").count()).toBe(0);
		await row.locator(`td time[datetime="${used}"]`).waitFor();
	});

	it("adds an MCP server that does not answer, and shows the source unreachable with the error", async () => {
		const closed = createServer();
		await new Promise<void>(resolve => closed.listen(0, "127.0.0.1", resolve));
		const url = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/mcp`;
		await new Promise(resolve => closed.close(resolve));
		await open(page, "sources");
		await page.getByLabel("Name").fill("later");
		await page.getByLabel("Server URL").fill(url);
		await page.getByRole("button", { name: "Add source" }).click();
		await page.locator(".notice.ok", { hasText: /^later: / }).waitFor();
		const row = page.locator("tr", { hasText: "later" });
		await row.locator(".badge", { hasText: "unreachable" }).waitFor();
		const listed = await http(node.url, "GET", "/api/v1/sources", { tenant: TENANT });
		const source = listed.body.items.find((item: { name: string }) => item.name === "later");
		expect(source.health.state).toBe("unreachable");
		expect(await row.locator(".error-text").textContent()).toBe(source.health.error);
		await shot("sources-unreachable");
	});

	it("fits a desktop and a phone in every view, without sideways scrolling or layout jumps", async () => {
		const phone = await context.newPage();
		watchPage(phone, node.url, problems);
		await phone.setViewportSize({ width: 390, height: 844 });
		await signIn(phone, node.url, SERVICE_TOKEN, TENANT);
		const jumps: string[] = [];
		for (const [size, target, width] of [
			["desktop", page, 1280],
			["phone", phone, 390]
		] as const) {
			for (const view of VIEWS) {
				await target.evaluate("window.__shifts = []");
				await open(target, view);
				// A shift shows up in the frame after it happens: let two frames pass before reading them.
				await target.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))");
				expect([size, view, await target.evaluate("document.documentElement.scrollWidth")]).toEqual([
					size,
					view,
					width
				]);
				expect([size, view, await target.evaluate(CONTROLS_OFF_SCREEN)]).toEqual([size, view, []]);
				const shifts = (await target.evaluate("window.__shifts")) as { value: number; nodes: string }[];
				const total = shifts.reduce((sum, shift) => sum + shift.value, 0);
				// 0.1 is what Chromium's Web Vitals call a good cumulative layout shift; the console stays far below.
				if (total >= 0.02)
					jumps.push(`${size} ${view}: ${total.toFixed(3)} (${shifts.map(s => s.nodes).join("; ")})`);
				const name = view.replace("tools/{tool}", "tool").replace("/", "-");
				await target.screenshot({ path: path.join(SHOTS, `${size}-${name}.png`), fullPage: true });
			}
		}
		await phone.close();
		expect(jumps).toEqual([]);
		// The measurement sees a jump when there is one: content pushed down by a late banner.
		await page.evaluate("window.__shifts = []");
		await page.evaluate(
			`(() => { const banner = document.createElement("div"); banner.style.height = "200px"; document.querySelector("main").prepend(banner); })()`
		);
		await page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))");
		expect(
			await page.evaluate("window.__shifts.reduce((sum, shift) => sum + shift.value, 0)")
		).toBeGreaterThan(0.02);
	});

	it("saw no console error, no request leaving the host, no alert, and no API call without its bearer header or with a cookie", () => {
		expect(problems).toEqual([]);
	});
});
