import { randomUUID } from "crypto";
import { createServer } from "http";
import type { AddressInfo } from "net";
import { describeWithNats, describeWithRedis, dropPrefix } from "../support/backends";
import { ServiceProcess } from "../support/process-node";
import { bashBlocks, commandsOf, expectedPairs, Shell, type Command } from "../support/readme-blocks";

/**
 * Every ```bash block of the README, run as a reader would: the service started as the Quick start
 * says, then each command in one shell, its answer checked against the `# …` the README shows.
 */
jest.setTimeout(180000);

const BLOCKS = bashBlocks("README.md");
const isSetup = (block: string) => /\bnpm (install|start)\b/.test(block) && !block.includes("TRANSPORTER=");
const isToken = (block: string) => /^export TOKEN=/m.test(block);
const isCluster = (block: string) => block.includes("TRANSPORTER=");

async function freePort(): Promise<number> {
	const server = createServer();
	await new Promise<void>(resolve => server.listen(0, "127.0.0.1", resolve));
	const { port } = server.address() as AddressInfo;
	await new Promise(resolve => server.close(resolve));
	return port;
}

async function untilListening(port: number): Promise<void> {
	const deadline = Date.now() + 30000;
	while (
		!(await fetch(`http://127.0.0.1:${port}/`).then(
			() => true,
			() => false
		))
	) {
		if (Date.now() > deadline) throw new Error(`nothing listens on ${port}`);
		await delay(50);
	}
}

const delay = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

/**
 * Runs a command and checks its answer. A reader waits and tries again while the service is
 * still settling (a tool being probed, a task queued, a node joining): reads, answers of a node
 * not yet up (nothing, or 503) are tried again until the README's answer shows or time is up.
 */
async function runChecked(shell: Shell, command: Command, rewrite: (text: string) => string) {
	const assignment = /^([A-Z_]+)=\$\(/.exec(command.text)?.[1];
	const text = rewrite(command.text) + (assignment ? `; printf '%s' "$${assignment}"` : "");
	const pairs = expectedPairs(command.expected);
	const rereadable = !/\s-X\s/.test(command.text) || /\bexecute\b/.test(command.text);
	const deadline = Date.now() + 60000;
	for (;;) {
		const { output, status } = await shell.run(text);
		const notUp = output === "" || /"code":503\b/.test(output);
		const missing = pairs.filter(pair => !output.includes(pair));
		const failed =
			status !== 0 ||
			/"code":[45]\d\d\b/.test(output) ||
			missing.length > 0 ||
			(assignment !== undefined && (output === "" || output === "undefined"));
		if (!failed) return output;
		if (Date.now() > deadline || !(notUp || (rereadable && missing.length > 0)))
			throw new Error(
				`README command failed:\n${command.text}\nexpected ${JSON.stringify(pairs)}\nexit ${status}, answered:\n${output}`
			);
		await delay(200);
	}
}

describe("README examples", () => {
	let node: ServiceProcess;
	let shell: Shell;
	let url: string;
	let upstreamPort: number;

	beforeAll(async () => {
		const setup = BLOCKS.filter(isSetup).join("\n");
		const start = /^((?:[A-Z_]+=\S+\s+)*)npm start/m.exec(setup);
		if (!start) throw new Error("the README's Quick start no longer says how to start the service");
		const env = Object.fromEntries(
			start[1]
				.trim()
				.split(/\s+/)
				.filter(Boolean)
				.map(assignment => assignment.split("=", 2) as [string, string])
		);
		node = new ServiceProcess(env);
		url = await node.url();
		const [, token] = await node.waitFor(/^SERVICE_TOKEN=(\S+)$/m);
		upstreamPort = await freePort();
		shell = new Shell({ PATH: process.env.PATH, HOME: process.env.HOME, TOKEN: token });
	});

	afterAll(async () => {
		await shell?.close();
		await node?.stop();
	});

	it("has a Quick start, the token step and runnable examples", () => {
		expect(BLOCKS.filter(isSetup)).toHaveLength(1);
		expect(BLOCKS.filter(isToken)).toHaveLength(1);
		expect(BLOCKS.filter(b => !isSetup(b) && !isToken(b) && !isCluster(b)).length).toBeGreaterThan(2);
	});

	it("answers every example as the README shows", async () => {
		const rewrite = (text: string) =>
			text.replaceAll("localhost:3000", url.replace("http://", "")).replaceAll("8080", String(upstreamPort));
		for (const block of BLOCKS.filter(b => !isSetup(b) && !isToken(b) && !isCluster(b)))
			for (const command of commandsOf(block)) {
				await runChecked(shell, command, rewrite);
				// A reader starts the stand-in API and types on; the test waits until it listens.
				if (command.text.trimEnd().endsWith("&") && command.text.includes("8080"))
					await untilListening(upstreamPort);
			}
	});
});

const describeWithCluster =
	describeWithRedis === describe && describeWithNats === describe ? describe : describe.skip;

describeWithCluster("README cluster recipe", () => {
	const prefix = `test-${randomUUID()}:`;
	let shell: Shell;

	beforeAll(() => {
		// Its own namespace and key prefix on the shared NATS and Redis.
		shell = new Shell({
			PATH: process.env.PATH,
			HOME: process.env.HOME,
			NAMESPACE: `readme-${randomUUID()}`,
			REDIS_PREFIX: prefix
		});
	});

	afterAll(async () => {
		await shell?.close();
		await dropPrefix(process.env.TEST_REDIS_URL!, prefix);
	});

	it("starts a gateway and two executors on one host, and they serve requests", async () => {
		const [block] = BLOCKS.filter(isCluster);
		expect(block).toBeDefined();
		const port = String(await freePort());
		const rewrite = (text: string) =>
			text.replaceAll("PORT=3000", `PORT=${port}`).replaceAll("localhost:3000", `127.0.0.1:${port}`);
		for (const command of commandsOf(block)) await runChecked(shell, command, rewrite);
		// Every node is still up: none crashed on a port another one holds.
		const { output } = await shell.run("jobs -r | wc -l");
		expect(output.trim()).toBe("3");
	});
});
