import { randomUUID } from "crypto";
import { describeWithNats, describeWithRedis, dropPrefix, uniquePrefix } from "../support/backends";
import { eventually } from "../support/eventually";
import { ManualClock } from "../support/manual-clock";
import { http, startNode, type TestNode } from "../support/node";

/**
 * A gateway node with no workers and an executor node whose idle workers poll only when their clock
 * is advanced (it never is here): every task below runs because the gateway woke the executor.
 */
describeWithRedis("waking an executor on another node", () => {
	describeWithNats("over NATS", () => {
		const redisUrl = process.env.TEST_REDIS_URL!;
		const prefix = uniquePrefix();
		const namespace = `wake-${randomUUID()}`;
		const gatewayClock = new ManualClock();
		let gateway: TestNode;
		let executor: TestNode;

		beforeAll(async () => {
			const node = (services: string[], clock: ManualClock) =>
				startNode({
					services,
					nodeID: `${services[0]}-${namespace}`,
					redisUrl,
					redisPrefix: prefix,
					transporter: process.env.TEST_NATS_URL,
					broker: { namespace },
					settings: { clock }
				});
			gateway = await node(["api", "keys", "registry", "validator"], gatewayClock);
			executor = await node(["executor"], new ManualClock());
			await gateway.broker.waitForServices(["executor"], 10_000);
		});

		afterAll(async () => {
			await Promise.all([gateway?.stop(), executor?.stop()]);
			await dropPrefix(redisUrl, prefix);
		});

		const tenant = "wake";
		const submit = async () => {
			const res = await http(gateway.url, "POST", "/api/v1/internal/tasks", {
				tenant,
				body: {
					type: "tool_execution",
					payload: { tool_name: "calculator", parameters: { expression: "1+1" } }
				}
			});
			expect(res.status).toBe(202);
			return res.body.task_id as string;
		};
		const completed = (taskId: string) =>
			eventually(async () => {
				const res = await http(gateway.url, "GET", `/api/v1/internal/tasks/${taskId}`, { tenant });
				expect(res.body.status).toBe("completed");
			});

		it("runs a task submitted right after another one once the interval's closing signal arrives, not at the next poll", async () => {
			// The first submission signals at once.
			await completed(await submit());
			// The second falls inside the same signal interval (the gateway's clock has not moved): its
			// signal is the one due at the interval's end.
			const second = await submit();
			await gatewayClock.advance(50);
			await completed(second);
		});

		it("sends one signal for a burst: every task of it runs", async () => {
			await gatewayClock.advance(50);
			const burst = await Promise.all(Array.from({ length: 5 }, submit));
			await gatewayClock.advance(50);
			for (const taskId of burst) await completed(taskId);
		});
	});
});
