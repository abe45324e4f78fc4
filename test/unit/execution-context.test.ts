import { ExecutionContext } from "../../lib/execution-context";

const env = { outbound_allow_hosts: [] };
const call = async () => null;
const fresh = () => new ExecutionContext("acme", "agent-1", "exec-1", 500, env, call);

describe("ExecutionContext", () => {
	it("carries the execution's identity, limit and environment", () => {
		const context = fresh();
		expect(context).toMatchObject({
			tenant_id: "acme",
			agent_id: "agent-1",
			execution_id: "exec-1",
			timeout_ms: 500
		});
		expect(context.env).toBe(env);
		expect(context.call).toBe(call);
	});

	it("gives one signal, not aborted until the execution is", () => {
		const context = fresh();
		const signal = context.signal;
		expect(signal.aborted).toBe(false);
		expect(context.signal).toBe(signal);
	});

	it("aborts a signal a tool already holds, with the reason", () => {
		const context = fresh();
		const signal = context.signal;
		const heard = jest.fn();
		signal.addEventListener("abort", heard);
		const reason = new Error("timed out");
		context.abort(reason);
		expect(heard).toHaveBeenCalledTimes(1);
		expect(signal.aborted).toBe(true);
		expect(signal.reason).toBe(reason);
	});

	it("shows a tool that reads the signal after the timeout that it is aborted", () => {
		const context = fresh();
		const reason = new Error("timed out");
		context.abort(reason);
		expect(context.signal.aborted).toBe(true);
		expect(context.signal.reason).toBe(reason);
	});
});
