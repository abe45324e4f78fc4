import { eventually } from "../support/eventually";
import { ServiceProcess } from "../support/process-node";

// Each test starts the service in a process of its own, from the TypeScript sources.
jest.setTimeout(90000);

describe("npm start with nothing configured", () => {
	let node: ServiceProcess | undefined;
	afterEach(() => node?.stop());

	it("makes up a SERVICE_TOKEN, prints it once on its own line, and accepts it", async () => {
		node = new ServiceProcess({});
		const url = await node.url();
		const lines = node.stdout.split("\n").filter(line => line.includes("SERVICE_TOKEN"));
		expect(lines).toEqual([expect.stringMatching(/^SERVICE_TOKEN=[A-Za-z0-9_-]{40,}$/)]);
		const token = lines[0].slice("SERVICE_TOKEN=".length);
		const execute = () =>
			fetch(`${url}/api/v1/internal/execute`, {
				method: "POST",
				headers: {
					authorization: `Bearer ${token}`,
					"x-tenant-id": "acme",
					"content-type": "application/json"
				},
				body: JSON.stringify({ tool_name: "calculator", parameters: { expression: "5 km to m" } })
			});
		// The first calculation starts the worker pool, which a loaded machine may not do within the
		// tool's timeout: the promise is that the token works, so a timeout is tried again.
		const body = await eventually(async () => {
			const res = await execute();
			expect(res.status).toBe(200);
			const answer = (await res.json()) as { error?: { type: string } };
			expect(answer.error?.type).not.toBe("timeout");
			return answer;
		}, 60000);
		expect(body).toMatchObject({ status: "completed", result: { value: "5000 m" } });
	});

	it("keeps a given SERVICE_TOKEN and never prints it", async () => {
		node = new ServiceProcess({ SERVICE_TOKEN: "given-token-0123456789" });
		await node.url();
		expect(node.stdout + node.stderr).not.toContain("given-token-0123456789");
		expect(node.stdout).not.toMatch(/^SERVICE_TOKEN=/m);
	});

	it("refuses to start in production without a SERVICE_TOKEN, in one line", async () => {
		node = new ServiceProcess({ NODE_ENV: "production" });
		const exit = await node.exited;
		expect(exit.code).toBe(1);
		expect(node.stderr.trim().split("\n")).toEqual([expect.stringContaining("SERVICE_TOKEN is not set")]);
		expect(node.stdout).toBe("");
	});
});
