import { randomUUID } from "crypto";
import { Errors, ServiceBroker, type Context, type ServiceSchema } from "moleculer";
import { transporterFor } from "../../lib/transporter";
import { describeWithNats } from "../support/backends";
import { eventually } from "../support/eventually";
import { http, startNode, type TestNode } from "../support/node";

/** A service on another node that offers tools by declaring `tool` on its actions. */
const BillingService = {
	name: "billing",
	actions: {
		invoice: {
			tool: { description: "Create an invoice for a customer", tags: ["billing", "invoice"] },
			params: { amount: { type: "number", positive: true }, customer: "string", note: "string|optional" },
			handler(ctx: Context<{ amount: number; customer: string }, { tenant_id?: string; agent_id?: string }>) {
				return {
					invoice_id: `inv-${ctx.params.customer}`,
					amount: ctx.params.amount,
					tenant_id: ctx.meta.tenant_id,
					agent_id: ctx.meta.agent_id,
					meta_keys: Object.keys(ctx.meta).sort()
				};
			}
		},
		refund: {
			tool: {
				name: "issue_refund",
				description: "Refund an invoice",
				parameters: {
					type: "object",
					properties: { invoice_id: { type: "string" } },
					required: ["invoice_id"]
				}
			},
			handler() {
				throw new Errors.MoleculerClientError("invoice is already refunded", 409, "ALREADY_REFUNDED");
			}
		},
		internalReport: {
			handler() {
				return { secret: "internal figures" };
			}
		}
	}
} as unknown as ServiceSchema;

describeWithNats("moleculer_action tools across two brokers on NATS", () => {
	const transporter = process.env.TEST_NATS_URL!;
	const namespace = `action-tools-${randomUUID()}`;
	let registryNode: TestNode;
	let billingNode: ServiceBroker;

	const startBilling = async () => {
		const broker = new ServiceBroker({
			logger: false,
			transporter: transporterFor(transporter),
			namespace,
			nodeID: "billing-node"
		});
		broker.createService(BillingService);
		await broker.start();
		return broker;
	};

	const toolNamed = async (tenant: string, name: string) => {
		const list = await http(registryNode.url, "GET", "/api/v1/tools?type=moleculer_action&limit=200", {
			tenant
		});
		return list.body.items.find((t: { name: string }) => t.name === name);
	};

	const execute = (tenant: string, body: unknown, agent?: string) =>
		http(registryNode.url, "POST", "/api/v1/internal/execute", {
			tenant,
			body,
			headers: agent ? { "x-agent-id": agent } : undefined
		});

	beforeAll(async () => {
		registryNode = await startNode({ transporter, nodeID: "registry-node", broker: { namespace } });
		billingNode = await startBilling();
	});

	afterAll(async () => {
		await billingNode.stop();
		await registryNode.stop();
	});

	it("registers an action that declares `tool` as an active global tool with derived parameters", async () => {
		const tool = await eventually(async () => {
			const found = await toolNamed("acme", "billing_invoice");
			expect(found?.status).toBe("active");
			return found;
		});
		expect(tool).toMatchObject({
			tenant_id: "*",
			type: "moleculer_action",
			description: "Create an invoice for a customer",
			config: { action: "billing.invoice" },
			metadata: { tags: ["billing", "invoice"], auto_registered: true },
			parameters: {
				type: "object",
				properties: { amount: { type: "number" }, customer: { type: "string" }, note: { type: "string" } },
				required: ["amount", "customer"]
			}
		});
		const refund = await toolNamed("acme", "issue_refund");
		expect(refund.parameters.required).toEqual(["invoice_id"]);
		expect(await toolNamed("acme", "billing_internalReport")).toBeUndefined();
	});

	it("calls the action on the other node with the parameters and only identity in meta", async () => {
		const res = await execute(
			"acme",
			{ tool_name: "billing_invoice", parameters: { amount: 12.5, customer: "c1" } },
			"agent-7"
		);
		expect(res.status).toBe(200);
		expect(res.body).toMatchObject({
			status: "completed",
			tool_name: "billing_invoice",
			result: { invoice_id: "inv-c1", amount: 12.5, tenant_id: "acme", agent_id: "agent-7" }
		});
		expect(res.body.result.meta_keys).toEqual(["agent_id", "tenant_id"]);
	});

	it("checks parameters against the derived schema before calling the action", async () => {
		const res = await execute("acme", { tool_name: "billing_invoice", parameters: { customer: "c1" } });
		expect(res.status).toBe(422);
		expect(res.body.data).toEqual([
			{ field: "parameters.amount", message: "must have required property 'amount'" }
		]);
	});

	it("reports an action's error as a failed tool_error result", async () => {
		const res = await execute("acme", { tool_name: "issue_refund", parameters: { invoice_id: "inv-1" } });
		expect(res.status).toBe(200);
		expect(res.body).toMatchObject({
			status: "failed",
			error: { type: "tool_error", message: "invoice is already refunded" }
		});
	});

	it("lets tenant tools call only actions that declare `tool`, and never the registry's own", async () => {
		const optedIn = await http(registryNode.url, "POST", "/api/v1/tools", {
			tenant: "acme",
			body: {
				name: "my_invoice",
				description: "Runs a billing action",
				type: "moleculer_action",
				config: { action: "billing.invoice" }
			}
		});
		expect(optedIn.status).toBe(201);
		const ok = await execute("acme", { tool_id: optedIn.body.id, parameters: { amount: 1, customer: "x" } });
		expect(ok.body.status).toBe("completed");

		const internal = await http(registryNode.url, "POST", "/api/v1/tools", {
			tenant: "acme",
			body: {
				name: "peek",
				description: "Runs a billing action",
				type: "moleculer_action",
				config: { action: "billing.internalReport" }
			}
		});
		const refused = await execute("acme", { tool_id: internal.body.id, parameters: {} });
		expect(refused.body).toMatchObject({ status: "failed", error: { type: "tool_error" } });
		expect(refused.body.error.message).toContain("does not declare 'tool'");

		for (const action of ["keys.create", "api.health", "registry.remove", "$node.list", "executor.execute"]) {
			const reserved = await http(registryNode.url, "POST", "/api/v1/tools", {
				tenant: "acme",
				body: {
					name: "sneaky",
					description: "Runs a billing action",
					type: "moleculer_action",
					config: { action }
				}
			});
			expect([action, reserved.status]).toEqual([action, 422]);
		}
	});

	it("lets an operator's global tool call an action that does not declare `tool`", async () => {
		const global = await http(registryNode.url, "POST", "/api/v1/tools", {
			tenant: "*",
			body: {
				name: "ops_report",
				description: "Runs a billing action",
				type: "moleculer_action",
				config: { action: "billing.internalReport" }
			}
		});
		expect(global.status).toBe(201);
		const res = await execute("acme", { tool_name: "ops_report", parameters: {} });
		expect(res.body).toMatchObject({ status: "completed", result: { secret: "internal figures" } });
	});

	it("marks the tools disabled while no node offers the action, and active again when one returns", async () => {
		await billingNode.stop();
		await eventually(async () =>
			expect((await toolNamed("acme", "billing_invoice"))?.status).toBe("disabled")
		);
		expect((await toolNamed("acme", "issue_refund")).status).toBe("disabled");
		const refused = await execute("acme", {
			tool_name: "billing_invoice",
			parameters: { amount: 1, customer: "x" }
		});
		expect(refused.status).toBe(409);
		const tenantTool = await http(registryNode.url, "GET", "/api/v1/tools?type=moleculer_action", {
			tenant: "acme"
		});
		const mine = tenantTool.body.items.find((t: { name: string }) => t.name === "my_invoice");
		const unreachable = await execute("acme", { tool_id: mine.id, parameters: { amount: 1, customer: "x" } });
		expect(unreachable.body).toMatchObject({ status: "failed", error: { type: "upstream_error" } });

		billingNode = await startBilling();
		await eventually(async () => expect((await toolNamed("acme", "billing_invoice"))?.status).toBe("active"));
		const back = await execute("acme", {
			tool_name: "billing_invoice",
			parameters: { amount: 2, customer: "y" }
		});
		expect(back.body.status).toBe("completed");
	});
});
