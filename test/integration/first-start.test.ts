import { ServiceProcess } from "../support/process-node";

describe("npm start with nothing configured", () => {
	let node: ServiceProcess | undefined;
	afterEach(() => node?.stop());

	it("makes up a SERVICE_TOKEN, prints it once on its own line, and accepts it", async () => {
		node = new ServiceProcess({});
		const url = await node.url();
		const lines = node.stdout.split("\n").filter(line => line.includes("SERVICE_TOKEN"));
		expect(lines).toEqual([expect.stringMatching(/^SERVICE_TOKEN=[A-Za-z0-9_-]{40,}$/)]);
		const token = lines[0].slice("SERVICE_TOKEN=".length);
		const res = await fetch(`${url}/api/v1/internal/execute`, {
			method: "POST",
			headers: {
				authorization: `Bearer ${token}`,
				"x-tenant-id": "acme",
				"content-type": "application/json"
			},
			body: JSON.stringify({ tool_name: "calculator", parameters: { expression: "5 km to m" } })
		});
		expect(res.status).toBe(200);
		expect(await res.json()).toMatchObject({ status: "completed", result: { value: "5000 m" } });
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
