import type { Context, Service, ServiceSchema } from "moleculer";
import { pickDefinition } from "../lib/definition";
import { definitionHash } from "../lib/definition-hash";
import { invalid, isConflict, isNameTaken, notFound } from "../lib/errors";
import { mergePatch } from "../lib/merge-patch";
import { restoreSecrets, secretsNotGiven, upstreamOf } from "../lib/secrets";
import { needsProbe } from "../tools";
import type { CallerMeta, JsonObject, StoredTool, ToolDefinition } from "../types/wire";
import type { CatalogHost } from "./catalog-host";
import type { ToolHealthMethods } from "./tool-health.mixin";

export interface ToolVersionsSettings {
	/** Retries of an update that lost a race and carried no `expected_version`. */
	updateRetries: number;
}

interface ToolVersionsMethods {
	changeDefinition(
		ctx: Ctx,
		id: string,
		expectedVersion: number | undefined,
		next: (current: StoredTool) => ToolDefinition,
		action: "tool.update" | "tool.rollback",
		/** Refuses a valid definition for what it changes from `current` (run after validation). */
		confirm?: (current: StoredTool, next: ToolDefinition) => void
	): Promise<StoredTool>;
}

type Ctx<P = JsonObject> = Context<P, CallerMeta>;

/** The definition fields of a stored tool (or of one of its versions). */
const definitionOf = (tool: StoredTool): ToolDefinition => ({
	name: tool.name,
	description: tool.description,
	type: tool.type,
	parameters: tool.parameters,
	config: tool.config,
	metadata: tool.metadata,
	permissions: tool.permissions,
	timeout_ms: tool.timeout_ms,
	// Part of the definition (and of its hash): a later version keeps them unless it changes them.
	output_schema: tool.output_schema,
	output_validation: tool.output_validation,
	annotations: tool.annotations
});

/**
 * A tool's definition over time: an update or a rollback stores a new version (validated, with its
 * `definition_hash`), and every version stays readable.
 */
export function ToolVersionsMixin(): Partial<ServiceSchema> {
	type This = Service<ToolVersionsSettings> & ToolVersionsMethods & CatalogHost & ToolHealthMethods;
	const mixin: Partial<ServiceSchema<ToolVersionsSettings, ToolVersionsMethods, object, This>> = {
		settings: { updateRetries: 5 },

		actions: {
			update: {
				params: {
					id: { type: "string", max: 64 },
					expected_version: { type: "number", integer: true, positive: true, convert: true, optional: true }
				},
				handler(this: This, ctx: Ctx<JsonObject & { id: string; expected_version?: number }>) {
					const patch = pickDefinition(ctx.params);
					return this.changeDefinition(
						ctx,
						ctx.params.id,
						ctx.params.expected_version,
						current => {
							const next: ToolDefinition = {
								...definitionOf(current),
								...patch,
								// config and metadata are JSON Merge Patches; a masked secret sent back keeps the stored one.
								config:
									patch.config === undefined
										? current.config
										: restoreSecrets(mergePatch(current.config, patch.config) as JsonObject, current.config),
								metadata:
									patch.metadata === undefined
										? current.metadata
										: (mergePatch(current.metadata, patch.metadata) as JsonObject)
							};
							return next;
						},
						"tool.update",
						// ...but only while the secrets still go where they went.
						(current, next) => {
							if (upstreamOf(next.type, next.config ?? {}) === upstreamOf(current.type, current.config))
								return;
							const missing = secretsNotGiven(next.config ?? {}, patch.config);
							if (missing.length)
								throw invalid(
									"The tool's upstream changed: give every secret again",
									missing.map(field => ({
										field,
										message: "must be given again, since the upstream changed"
									}))
								);
						}
					);
				}
			},

			versions: {
				params: { id: { type: "string", max: 64 } },
				async handler(this: This, ctx: Ctx<{ id: string }>) {
					const tool = await this.findVisible(this.tenantOf(ctx), ctx.params.id);
					const versions = await this.store.versions(tool.id);
					return {
						items: versions.map(({ version, definition_hash, updated_at }) => ({
							version,
							definition_hash,
							updated_at
						}))
					};
				}
			},

			/** A new version with an earlier version's definition (secrets included, as they were stored). */
			rollback: {
				params: {
					id: { type: "string", max: 64 },
					version: { type: "number", integer: true, positive: true },
					expected_version: { type: "number", integer: true, positive: true, optional: true }
				},
				async handler(this: This, ctx: Ctx<{ id: string; version: number; expected_version?: number }>) {
					const { id, version, expected_version } = ctx.params;
					const tool = await this.findWritable(this.tenantOf(ctx), id);
					const earlier = await this.store.getVersion(tool.id, version);
					if (!earlier) throw notFound("Tool version", `${tool.id}@${version}`);
					return this.changeDefinition(
						ctx,
						id,
						expected_version,
						() => definitionOf(earlier),
						"tool.rollback"
					);
				}
			}
		},

		methods: {
			/**
			 * Stores `next(current)` as the tool's new version, validated, and probes it again when its
			 * endpoint changed.
			 */
			async changeDefinition(this: This, ctx, id, expected_version, next, action, confirm) {
				const tenantId = this.tenantOf(ctx);
				for (let attempt = 0; ; attempt++) {
					const current = await this.findWritable(tenantId, id);
					const merged = next(current);
					// Validated first: a definition that cannot be stored says so before what its change needs.
					const report = await this.admitDefinition(ctx, tenantId, { ...ctx.params, ...merged }, current);
					confirm?.(current, merged);
					try {
						// A changed endpoint must prove itself again before it runs.
						const reprobe =
							needsProbe(merged.type) &&
							JSON.stringify([merged.type, merged.config]) !== JSON.stringify([current.type, current.config]);
						const updated = await this.store.update(
							id,
							stored => ({
								...stored,
								...merged,
								definition_hash: definitionHash(merged as Parameters<typeof definitionHash>[0]),
								version: stored.version + 1,
								...(reprobe && stored.status !== "disabled" ? { status: "pending_validation" as const } : {}),
								validation: report,
								updated_at: new Date().toISOString()
							}),
							expected_version ?? current.version,
							this.audited(ctx, action)
						);
						if (!updated) throw notFound("Tool", id);
						const shown = this.announceUpdated(ctx, updated);
						if (updated.status === "pending_validation") await this.queueProbe(ctx, updated);
						return shown;
					} catch (err) {
						// Without an expected version the caller asked for "latest wins": a race with
						// another writer is retried on the new state instead of surfacing as 409.
						const lostRace = isConflict(err) && !isNameTaken(err) && expected_version === undefined;
						if (!lostRace || attempt >= this.settings.updateRetries) throw err;
					}
				}
			}
		}
	};
	return mixin as Partial<ServiceSchema>;
}
