import { ServiceProcess } from "../support/process-node";
import { bashBlocks, commandsOf, freePort, runChecked, Shell } from "../support/readme-blocks";

/**
 * Every ```bash block of the README, run as a reader would: the service started as the Quick start
 * says, then each command in one shell, its answer checked against the `# …` the README shows.
 */
jest.setTimeout(180000);

const BLOCKS = bashBlocks("README.md");
const isSetup = (block: string) => /\bnpm (install|start)\b/.test(block) && !block.includes("TRANSPORTER=");
const isToken = (block: string) => /^export TOKEN=/m.test(block);
const isCluster = (block: string) => block.includes("TRANSPORTER=");

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
		// No wait of the test's own: the README waits for its stand-in API before registering the tool.
		for (const block of BLOCKS.filter(b => !isSetup(b) && !isToken(b) && !isCluster(b)))
			for (const command of commandsOf(block)) await runChecked(shell, command, rewrite);
	});
});
