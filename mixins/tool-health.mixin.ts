import type { Context, Service, ServiceBroker, ServiceSchema } from "moleculer";
import { config } from "../lib/config";
import { notFound } from "../lib/errors";
import { MemoryProbeSchedule } from "../lib/health/memory-probe-schedule";
import {
	nextHealth,
	UNKNOWN_HEALTH,
	type BackoffSettings,
	type ProbeSchedule
} from "../lib/health/probe-schedule";
import { RedisProbeSchedule } from "../lib/health/redis-probe-schedule";
import type { CallerMeta, JsonObject, StoredTool, ToolHealth, ValidationReport } from "../types/wire";
import type { RedisLocals, RedisSettings } from "./redis.mixin";
import type { CatalogHost } from "./catalog-host";

/** Re-probing of tools whose upstream does not answer. */
export interface HealthSettings extends BackoffSettings {
	/** How often each registry node looks for tools due for a probe. */
	sweepMs: number;
	/** A claimed probe that never reports (its node died) is claimed again after this. */
	claimMs: number;
}

export interface ToolHealthSettings {
	health: HealthSettings;
}

export interface ToolHealthMethods {
	/** Queues the tool's probe; resolves the task id, or null when no executor can take it now. */
	queueProbe(caller: Context | ServiceBroker, tool: StoredTool): Promise<{ task_id: string } | null>;
}

export interface ToolHealthLocals {
	probeSchedule: ProbeSchedule;
}

type Ctx<P> = Context<P, CallerMeta>;

/**
 * The health of tools that call out: records what the executor's probe and the sources service
 * report, and queues a probe again, with backoff, for each tool whose upstream stays unreachable.
 * Uses RedisMixin's connection, so it is listed before RedisMixin.
 */
export function ToolHealthMixin(): Partial<ServiceSchema> {
	type This = Service<ToolHealthSettings & RedisSettings> &
		ToolHealthMethods &
		ToolHealthLocals &
		RedisLocals &
		CatalogHost & { healthTimer?: NodeJS.Timeout; probeDue(): Promise<void> };

	const mixin: Partial<ServiceSchema<ToolHealthSettings, ToolHealthMethods, ToolHealthLocals, This>> = {
		settings: {
			health: {
				// About a minute after the first failed probe, doubling up to an hour.
				initialMs: config().healthRecheckMs,
				maxMs: config().healthRecheckMaxMs,
				sweepMs: 5000,
				claimMs: 5 * 60000
			}
		},

		actions: {
			/**
			 * Records the health of a tool whose upstream is watched elsewhere (an `mcp` tool follows its
			 * source, which the sources service probes with backoff). Not a change of the definition.
			 */
			recordHealth: {
				visibility: "public",
				params: {
					id: { type: "string", max: 64 },
					health: {
						type: "object",
						props: {
							state: { type: "enum", values: ["unknown", "healthy", "unreachable"] },
							checked_at: { type: "string", max: 64, optional: true },
							next_check_at: { type: "string", max: 64, optional: true },
							error: { type: "string", max: 1000, optional: true }
						}
					}
				},
				async handler(this: This, ctx: Ctx<{ id: string; health: ToolHealth }>) {
					const tool = await this.findWritable(this.tenantOf(ctx), ctx.params.id);
					const updated = await this.store.update(tool.id, stored => ({
						...stored,
						health: ctx.params.health
					}));
					if (!updated) throw notFound("Tool", ctx.params.id);
					return this.announceUpdated(ctx, updated);
				}
			},

			/**
			 * Records a functional validation (the executor's probe): an invalid report makes the tool
			 * `invalid`; otherwise it is `active` and its health says whether the upstream answered.
			 */
			recordValidation: {
				visibility: "public",
				params: {
					id: { type: "string", max: 64 },
					version: { type: "number", integer: true },
					report: { type: "object" },
					health: { type: "object", optional: true }
				},
				async handler(
					this: This,
					ctx: Ctx<{
						id: string;
						version: number;
						report: ValidationReport;
						health?: Pick<ToolHealth, "state" | "error">;
					}>
				) {
					const { id, version, report } = ctx.params;
					const probed = report.valid ? (ctx.params.health ?? UNKNOWN_HEALTH) : UNKNOWN_HEALTH;
					// The trail gets the probe that follows a change, not every health re-check of an active tool.
					let decides = false;
					const audit = this.audited(ctx, "tool.validate", report.valid ? "valid" : "invalid");
					// A report about an older version is stale: the newer version has its own probe queued.
					const updated = await this.store.update(
						id,
						stored => {
							if (
								stored.version !== version ||
								(stored.status !== "pending_validation" && stored.status !== "active")
							)
								return stored;
							decides = stored.status === "pending_validation" || !report.valid;
							return {
								...stored,
								status: report.valid ? "active" : "invalid",
								// The probe says nothing about descriptions: the definition check's findings stay visible.
								validation: stored.validation?.warnings
									? { ...report, warnings: stored.validation.warnings }
									: report,
								health: nextHealth(stored.health, probed, this.settings.health, Date.now())
							};
						},
						undefined,
						tool => (decides ? audit(tool) : null)
					);
					if (
						!updated ||
						(updated.validation !== report && updated.validation?.checked_at !== report.checked_at)
					)
						return { recorded: false };
					const { next_check_at } = updated.health;
					if (next_check_at) await this.probeSchedule.schedule(id, Date.parse(next_check_at));
					else await this.probeSchedule.remove(id);
					void ctx.broadcast("tool.validation_completed", {
						tenant_id: updated.tenant_id,
						tool: this.present(updated)
					});
					return { recorded: true };
				}
			}
		},

		methods: {
			async queueProbe(this: This, caller: Context | ServiceBroker, tool: StoredTool) {
				try {
					return await caller.call<{ task_id: string }, JsonObject>(
						"executor.queueValidation",
						{ tool_id: tool.id, version: tool.version },
						{ meta: { tenant_id: tool.tenant_id } }
					);
				} catch (err) {
					this.logger.warn(`Probe of tool '${tool.id}' not queued; it stays pending_validation`, err);
					return null;
				}
			},

			/** Queues the probes that are due; tools no longer unreachable leave the schedule. */
			async probeDue(this: This) {
				const { claimMs } = this.settings.health;
				for (const id of await this.probeSchedule.claimDue(Date.now(), claimMs, 100)) {
					const tool = await this.store.get(id);
					if (tool?.status === "active" && tool.health?.state === "unreachable")
						await this.queueProbe(this.broker, tool);
					else await this.probeSchedule.remove(id);
				}
			}
		},

		created(this: This) {
			this.probeSchedule = this.redis
				? new RedisProbeSchedule(this.redis, this.settings.redisPrefix)
				: new MemoryProbeSchedule();
		},

		started(this: This) {
			this.healthTimer = setInterval(
				() => void this.probeDue().catch(err => this.logger.warn("Queueing due probes failed", err)),
				this.settings.health.sweepMs
			);
		},

		stopped(this: This) {
			clearInterval(this.healthTimer);
		}
	};
	return mixin as Partial<ServiceSchema>;
}
