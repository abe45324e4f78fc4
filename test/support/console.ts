import { execFileSync } from "child_process";
import { existsSync } from "fs";
import path from "path";
import { chromium, type Page } from "playwright-core";
import { eventually } from "./eventually";
import { http } from "./node";

/** What the console suites share: the bundle build and a headless Chromium. */

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
/** Locally a missing browser skips the browser tests loudly; CI installs Debian's chromium and requires it. */
export const describeWithChromium = existsSync(CHROMIUM) || process.env.CI ? describe : describe.skip;
if (!existsSync(CHROMIUM) && !process.env.CI)
	process.stdout.write(`\n*** ${CHROMIUM} not found: the /ui browser tests are SKIPPED ***\n`);

export const ROOT = path.join(__dirname, "../..");
export const TENANT = "acme-console";
export const HOSTILE = "<img src=x onerror=alert(1)>";

/** Chromium as the machine runs it headless: no background traffic to Google's hosts. */
export const launchChromium = () =>
	chromium.launch({
		executablePath: CHROMIUM,
		args: [
			"--no-sandbox",
			"--disable-gpu",
			"--disable-quic",
			"--no-first-run",
			"--disable-background-networking",
			"--disable-component-update",
			"--disable-sync"
		]
	});

/** The bundle the gateway serves, built from the current sources (a second or two). */
export const buildConsole = (): Buffer =>
	execFileSync(
		process.execPath,
		[path.join(ROOT, "node_modules/vite/bin/vite.js"), "build", "--config", "ui/vite.config.mts"],
		{
			cwd: ROOT,
			stdio: "pipe"
		}
	);

/** Screenshots of every view, to look at (not committed). */
export const SHOTS = process.env.CONSOLE_SCREENSHOTS ?? path.join(ROOT, "test-results/console");

/** The browser logs every 4xx answer; the tests check the console shows those itself. */
const API_REFUSAL = /^Failed to load resource: the server responded with a status of 4\d\d/;

/**
 * Records what must never happen on a page: a console error, an uncaught exception, a request or
 * socket to another host, a credential in a URL, an alert (only injected markup could raise one).
 */
export function watchPage(target: Page, origin: string, problems: string[]): void {
	target.on("console", message => {
		if (message.type() === "error" && !API_REFUSAL.test(message.text()))
			problems.push(`console: ${message.text()}`);
	});
	target.on("pageerror", error => problems.push(`page error: ${error.message}`));
	target.on("request", request => {
		if (!request.url().startsWith(origin)) problems.push(`foreign request: ${request.url()}`);
	});
	target.on("websocket", socket => {
		if (!socket.url().startsWith(origin.replace("http", "ws")))
			problems.push(`foreign socket: ${socket.url()}`);
		if (socket.url().includes("token")) problems.push(`credential in a URL: ${socket.url()}`);
	});
	target.on("dialog", dialog => {
		// Confirmations are the console's own.
		if (dialog.type() !== "confirm") problems.push(`dialog: ${dialog.type()} ${dialog.message()}`);
		void dialog.accept();
	});
}

/** Follows a link of the console's navigation. */
export const navTo = (target: Page, name: string) =>
	target.getByRole("navigation").getByRole("link", { name, exact: true }).click();

/** Signs in from the sign-in page and waits for the catalog and the live feed. */
export async function signIn(
	target: Page,
	origin: string,
	credential: string,
	tenant?: string
): Promise<void> {
	await target.goto(`${origin}/ui`);
	await target.getByLabel("API key or service token").fill(credential);
	if (tenant) await target.getByLabel("Tenant").fill(tenant);
	await target.getByRole("button", { name: "Sign in" }).click();
	await target.getByRole("heading", { name: "Catalog" }).waitFor();
	// A first socket refused while the node is busy is retried after 1 s, 2 s, 4 s…: leave room for that.
	await target.getByText("Live", { exact: true }).waitFor({ timeout: 60000 });
}

/**
 * Waits until the calculator answers (on a loaded machine its worker pool may still be starting),
 * so a browser step that runs it does not meet the tool's timeout instead. Uses its own tenant:
 * the usage figures of the tenants under test stay theirs.
 */
export const calculatorReady = (origin: string) =>
	eventually(
		async () => {
			const run = await http(origin, "POST", "/api/v1/internal/execute", {
				tenant: "console-warm-up",
				body: { tool_name: "calculator", parameters: { expression: "1+1" } }
			});
			expect(run.body.result).toEqual({ value: 2 });
		},
		60000,
		200
	);
