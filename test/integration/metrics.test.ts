import { randomUUID } from "crypto";
import { ServiceBroker, type BrokerOptions, type Context, type ServiceSchema } from "moleculer";
import { brokerMiddlewares } from "../../lib/metrics/broker-middlewares";
import { GatewayPrometheusReporter } from "../../lib/metrics/gateway-prometheus-reporter";
import { transporterFor } from "../../lib/transporter";
import { describeWithNats } from "../support/backends";
import { eventually } from "../support/eventually";
import { http, startNode, type TestNode } from "../support/node";
import { clockTool } from "../support/definitions";

// Test brokers keep metrics off by default; these use the reporter and middlewares the real config uses.
const metricsBroker = {
	metrics: { enabled: true, reporter: new GatewayPrometheusReporter({}) },
	internalMiddlewares: false,
	middlewares: brokerMiddlewares(true)
} as unknown as Partial<BrokerOptions>;

/** The value of one Prometheus sample whose labels include all of `labels`, or undefined. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
	for (const line of text.split("\n")) {
		if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
		if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
			return Number(line.split(" ").pop());
	}
	return undefined;
}

describe("metrics at /metrics", () => {
	let node: TestNode;
	const scrape = async () => (await http(node.url, "GET", "/metrics")).body as string;
	const execute = (tenant: string, expression: string) =>
		http(node.url, "POST", "/api/v1/internal/execute", {
			tenant,
			body: { tool_name: "calculator", parameters: { expression } }
		});

	beforeAll(async () => {
		node = await startNode({ broker: { ...metricsBroker, nodeID: `metrics-${randomUUID()}` } });
		// The calculator's threads start with the first execution, which may time out on a busy machine.
		await eventually(
			async () => expect((await execute("metrics-warm", "1+1")).body.status).toBe("completed"),
			30000
		);
	}, 40000);

	afterAll(() => node.stop());

	it("refuses a scrape without the service token", async () => {
		const res = await http(node.url, "GET", "/metrics", { token: null });
		expect(res.status).toBe(401);
		expect((await http(node.url, "GET", "/metrics", { token: "wrong" })).status).toBe(401);
	});

	it("counts executions per tenant, tool, type and outcome and records their latency", async () => {
		const labels = { tenant: "metrics-a", tool: "calculator", type: "calculator" };
		const before = await scrape();
		const completed =
			sample(before, "tool_registry_executions_total", { ...labels, outcome: "completed" }) ?? 0;
		const bucket = { type: "calculator", le: "+Inf" };
		const count = sample(before, "tool_registry_execution_duration_bucket", bucket) ?? 0;
		await execute("metrics-a", "1+1");
		await execute("metrics-a", "2+2");
		await execute("metrics-a", "import({})");
		const after = await scrape();
		expect(sample(after, "tool_registry_executions_total", { ...labels, outcome: "completed" })).toBe(
			completed + 2
		);
		expect(
			sample(after, "tool_registry_executions_total", { ...labels, outcome: "tool_error" })
		).toBeGreaterThanOrEqual(1);
		expect(sample(after, "tool_registry_execution_duration_bucket", bucket)).toBe(count + 3);
		expect(after).toMatch(/# TYPE tool_registry_execution_duration histogram/);
		// Moleculer's request metrics, with the same names, from our cheap middleware: one series per
		// action and caller, Prometheus buckets, no client-side quantiles.
		const rest = { action: "api.rest", type: "local", caller: "null" };
		const exec = { action: "executor.execute", caller: "api" };
		expect(
			sample(after, "moleculer_request_total", rest)! - sample(before, "moleculer_request_total", rest)!
		).toBe(4);
		expect(
			sample(after, "moleculer_request_total", exec)! - sample(before, "moleculer_request_total", exec)!
		).toBe(3);
		expect(sample(after, "moleculer_request_time_count", exec)).toBe(
			sample(after, "moleculer_request_total", exec)
		);
		expect(sample(after, "moleculer_request_time_bucket", { ...exec, le: "+Inf" })).toBe(
			sample(after, "moleculer_request_total", exec)
		);
		expect(sample(after, "moleculer_request_active", exec)).toBe(0);
		expect(after).toMatch(/# TYPE moleculer_request_time histogram/);
		expect(after).not.toMatch(/quantile=/);
		// Only one family of each name: Moleculer's built-in request metrics are not registered.
		expect(after.match(/^# TYPE moleculer_request_total /gm)).toHaveLength(1);
		// Moleculer's registry gauges are still Moleculer's.
		expect(after).toMatch(/^moleculer_registry_actions_total/m);
	});

	it("counts failed requests by error type", async () => {
		const before = await scrape();
		const labels = {
			action: "registry.get",
			caller: "api",
			errorName: "MoleculerClientError",
			errorCode: "404"
		};
		const res = await http(node.url, "GET", "/api/v1/tools/no-such-tool", { tenant: "metrics-a" });
		expect(res.status).toBe(404);
		const after = await scrape();
		expect(sample(after, "moleculer_request_error_total", labels)).toBe(
			(sample(before, "moleculer_request_error_total", labels) ?? 0) + 1
		);
	});

	it("reports registered tools per tenant, the outbox and the notifier", async () => {
		await http(node.url, "POST", "/api/v1/tools", {
			tenant: "metrics-b",
			body: clockTool("clock")
		});
		await http(node.url, "POST", "/api/v1/internal/tasks", {
			tenant: "metrics-b",
			body: { payload: { tool_name: "datetime", parameters: { operation: "now" } } }
		});
		// Gauges are sampled every few seconds.
		const text = await eventually(async () => {
			const scraped = await scrape();
			expect(sample(scraped, "tool_registry_tools_registered", { tenant: "metrics-b" })).toBe(1);
			expect(sample(scraped, "tool_registry_outbox_size")).toBeGreaterThanOrEqual(1);
			return scraped;
		}, 30000);
		expect(sample(text, "tool_registry_tools_registered", { tenant: "*" })).toBeGreaterThanOrEqual(2);
		expect(sample(text, "tool_registry_notifier_connected")).toBe(0);
		expect(sample(text, "tool_registry_notifier_leader")).toBe(1);
	}, 40000);

	it("reports the depth and oldest age of each tenant queue", async () => {
		// No workers: submitted tasks stay pending, so the gauges have something to show.
		const idle = await startNode({
			services: ["api", "registry", "validator", "executor"],
			broker: { ...metricsBroker, nodeID: `idle-${randomUUID()}` },
			settings: { tasks: { concurrency: 0 } }
		});
		try {
			for (let i = 0; i < 3; i++)
				await http(idle.url, "POST", "/api/v1/internal/tasks", {
					tenant: "metrics-q",
					body: { payload: { tool_name: "datetime", parameters: { operation: "now" } } }
				});
			await eventually(async () => {
				const text = (await http(idle.url, "GET", "/metrics")).body as string;
				const labels = { queue: "tool_execution:metrics-q", tenant: "metrics-q" };
				expect(sample(text, "tool_registry_queue_depth", labels)).toBe(3);
				expect(sample(text, "tool_registry_queue_oldest_age", labels)).toBeGreaterThan(0);
			}, 20000);
		} finally {
			await idle.stop();
		}
	}, 40000);

	it("accepts and echoes X-Request-ID", async () => {
		const res = await http(node.url, "GET", "/api/v1/tools", {
			tenant: "metrics-c",
			headers: { "x-request-id": "req-123" }
		});
		expect(res.headers.get("x-request-id")).toBe("req-123");
		expect(typeof (await http(node.url, "GET", "/health", { token: null })).headers.get("x-request-id")).toBe(
			"string"
		);
	});
});

describeWithNats("one request followed across nodes", () => {
	const namespace = `trace-${randomUUID()}`;
	let gateway: TestNode;
	let remote: ServiceBroker;
	const seen: { requestID: string | null; meta: unknown }[] = [];

	beforeAll(async () => {
		const transporter = process.env.TEST_NATS_URL!;
		remote = new ServiceBroker({
			logger: false,
			namespace,
			nodeID: "remote",
			transporter: transporterFor(transporter)
		});
		remote.createService({
			name: "probe",
			actions: {
				echo: {
					tool: { description: "Records the request id it is called with" },
					handler(ctx: Context) {
						seen.push({ requestID: ctx.requestID, meta: ctx.meta });
						return { ok: true };
					}
				}
			}
		} as unknown as ServiceSchema);
		await remote.start();
		gateway = await startNode({ transporter, nodeID: "gateway", broker: { namespace } });
	});

	afterAll(async () => {
		await gateway.stop();
		await remote.stop();
	});

	it("carries X-Request-ID from the gateway through the executor to an action on another node", async () => {
		await eventually(async () => {
			const res = await http(gateway.url, "POST", "/api/v1/internal/execute", {
				tenant: "trace",
				headers: { "x-request-id": "trace-42" },
				body: { tool_name: "probe_echo", parameters: {} }
			});
			expect(res.body.status).toBe("completed");
			expect(res.headers.get("x-request-id")).toBe("trace-42");
		});
		expect(seen.at(-1)).toMatchObject({ requestID: "trace-42", meta: { tenant_id: "trace" } });
	});
});
