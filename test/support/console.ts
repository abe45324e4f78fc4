import { execFileSync } from "child_process";
import { existsSync } from "fs";
import path from "path";
import { chromium } from "playwright-core";

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
