import { randomUUID } from "crypto";
import { ServiceBroker } from "moleculer";
import { OPS_COMMANDS } from "../../lib/repl-commands";
import { transporterFor } from "../../lib/transporter";
import { describeWithNats } from "../support/backends";
import { http, startNode, type TestNode } from "../support/node";
import { clockTool } from "../support/definitions";

const command = (name: string) => OPS_COMMANDS.find(c => c.command.split(" ")[0] === name)!;

describeWithNats("REPL operator commands against a two-node cluster on NATS", () => {
	const namespace = `repl-${randomUUID()}`;
	let service: TestNode;
	let repl: ServiceBroker;

	beforeAll(async () => {
		const transporter = process.env.TEST_NATS_URL!;
		service = await startNode({ transporter, nodeID: "service-node", broker: { namespace } });
		// The operator's node runs no service of its own: it only joins the cluster, as `npm run repl` does.
		repl = new ServiceBroker({
			logger: false,
			namespace,
			nodeID: "repl-node",
			transporter: transporterFor(transporter)
		});
		await repl.start();
		await repl.waitForServices(["registry", "executor", "notifier"], 10000);
	});

	afterAll(async () => {
		await repl.stop();
		await service.stop();
	});

	it("lists a tenant's tools with the global ones", async () => {
		await http(service.url, "POST", "/api/v1/tools", {
			tenant: "ops-a",
			body: clockTool("clock_a")
		});
		const out = await command("tools").run(repl, { tenant: "ops-a" });
		const lines = out.split("\n");
		expect(lines[0]).toMatch(/^name\s+id\s+tenant\s+type\s+status\s+health\s+version$/);
		expect(out).toMatch(/clock_a\s+\S+\s+ops-a\s+datetime\s+active\s+unknown\s+1/);
		expect(out).toMatch(/calculator\s+\S+\s+\*\s+calculator\s+active/);
		expect(await command("tools").run(repl, { tenant: "ops-b" })).not.toContain("clock_a");
	});

	it("shows a task and the queue depths", async () => {
		const submitted = await http(service.url, "POST", "/api/v1/internal/tasks", {
			tenant: "ops-a",
			body: { payload: { tool_name: "datetime", parameters: { operation: "now" } } }
		});
		const out = await command("task").run(repl, { tenant: "ops-a", taskId: submitted.body.task_id });
		expect(JSON.parse(out)).toMatchObject({
			task_id: submitted.body.task_id,
			tenant_id: "ops-a",
			type: "tool_execution"
		});
		await expect(
			command("task").run(repl, { tenant: "ops-b", taskId: submitted.body.task_id })
		).rejects.toMatchObject({
			code: 404
		});
		expect(await command("queues").run(repl, {})).toMatch(/All queues are empty|queue\s+pending/);
	});

	it("shows the notifier's connection and outbox state", async () => {
		const state = JSON.parse(await command("notifier").run(repl, {}));
		expect(state).toMatchObject({ connected: false, authenticated: false, outbox_size: expect.any(Number) });
	});

	it("disables a tool so it is neither run nor discovered, and enables it again", async () => {
		const tool = await http(service.url, "POST", "/api/v1/tools", {
			tenant: "ops-c",
			body: clockTool("clock_c")
		});
		expect(await command("disable").run(repl, { tenant: "ops-c", toolId: tool.body.id })).toBe(
			`clock_c (${tool.body.id}) is disabled`
		);
		const run = await http(service.url, "POST", "/api/v1/internal/execute", {
			tenant: "ops-c",
			body: { tool_id: tool.body.id, parameters: { operation: "now" } }
		});
		expect(run.status).toBe(409);
		const found = await http(service.url, "POST", "/api/v1/registry/discover", {
			tenant: "ops-c",
			body: { query: "clock" }
		});
		expect(found.body.items.map((i: { tool: { name: string } }) => i.tool.name)).not.toContain("clock_c");
		expect(await command("enable").run(repl, { tenant: "ops-c", toolId: tool.body.id })).toContain(
			"is active"
		);
		const again = await http(service.url, "POST", "/api/v1/internal/execute", {
			tenant: "ops-c",
			body: { tool_id: tool.body.id, parameters: { operation: "now" } }
		});
		expect(again.body.status).toBe("completed");
	});
});
