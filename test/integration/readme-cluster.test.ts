import { randomUUID } from "crypto";
import { describeWithNats, describeWithRedis, dropPrefix } from "../support/backends";
import { bashBlocks, commandsOf, freePort, runChecked, Shell } from "../support/readme-blocks";

/** The README's cluster recipe, run as it is (build, then three `npm start`s on one host). */
jest.setTimeout(240000);

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
		const [block] = bashBlocks("README.md").filter(b => b.includes("TRANSPORTER="));
		expect(block).toBeDefined();
		// The README's ports (3000, 3001, …) become free ones: this host is shared.
		const ports = new Map<string, string>();
		for (const [, port] of block.matchAll(/PORT=(\d+)/g)) ports.set(port, String(await freePort()));
		const rewrite = (text: string) =>
			text
				.replace(/PORT=(\d+)/g, (_, port: string) => `PORT=${ports.get(port)}`)
				.replace(/localhost:(\d+)/g, (_, port: string) => `127.0.0.1:${ports.get(port)}`);
		for (const command of commandsOf(block)) await runChecked(shell, command, rewrite);
		// Every node is still up: none crashed on a port another one holds.
		const { output } = await shell.run("jobs -r | wc -l");
		expect(output.trim()).toBe("3");
	});
});
