import type { Context, Service, ServiceSchema } from "moleculer";
import { executorLost, isNodeLost } from "../lib/errors";
import { EXECUTION_PARAMS, type ExecutionRequest, type ExecutionResult } from "../lib/execution";
import type { DependencyWatch } from "../lib/dependency-watch";
import type { CallerMeta } from "../types/wire";
import type { ToolAccessMethods } from "./tool-access.mixin";

export interface ExecutionFailoverLocals {
	reachable: DependencyWatch;
}

type FailoverThis = Service & ToolAccessMethods & ExecutionFailoverLocals;

/** Runs of one call: the first, and one on another node when the first node was lost. */
const ATTEMPTS = 2;

/**
 * The gateway's `tools.execute`: runs a tool on an executor node now. When that node is lost before
 * it answers (crashed, cut off: Moleculer rejects the call once its heartbeats stop), the call runs
 * again on a live node if the tool says that is safe (`idempotent` or `read_only`); otherwise whether
 * it ran is unknown and the caller gets 503 `EXECUTOR_LOST` with `Retry-After`. Needs ToolAccessMixin
 * and a `reachable` watch (DependencyWatch) in the host service.
 */
export function ExecutionFailoverMixin(): Partial<ServiceSchema> {
	const mixin: Partial<ServiceSchema<object, object, ExecutionFailoverLocals, FailoverThis>> = {
		actions: {
			"tools.execute": {
				params: { $$strict: true, ...EXECUTION_PARAMS },
				async handler(this: FailoverThis, ctx: Context<ExecutionRequest, CallerMeta>) {
					for (let attempt = 1; ; attempt++) {
						// With the transporter down a call to another node would wait for its timeout.
						this.reachable.require("executor.execute");
						try {
							return await ctx.call<ExecutionResult, ExecutionRequest>("executor.execute", ctx.params);
						} catch (err) {
							if (!isNodeLost(err)) throw err;
							const { annotations } = await this.resolveTool(ctx, ctx.params);
							if (attempt >= ATTEMPTS || !(annotations?.idempotent || annotations?.read_only))
								throw executorLost();
							this.logger.info("An executor node was lost during a call; running it again on another node");
						}
					}
				}
			}
		}
	};
	return mixin as Partial<ServiceSchema>;
}
