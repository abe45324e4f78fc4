import type { Service, ServiceSchema } from "moleculer";
import { BUILTIN_RELEASE, BUILTIN_TOOLS, isEarlierBuiltin } from "../lib/builtin-tools";
import { isNameTaken } from "../lib/errors";
import { UNKNOWN_HEALTH } from "../lib/health/probe-schedule";
import { newId } from "../lib/ids";
import { paramsToJsonSchema } from "../lib/params-schema";
import { GLOBAL_TENANT } from "../lib/tenancy";
import { isReservedAction } from "../tools/moleculer-action";
import type { JsonObject, StoredTool, ToolAnnotations, ToolDefinition, ToolStatus } from "../types/wire";
import type { CatalogHost } from "./catalog-host";

/** A tool some node offers through an action that declares `tool`. */
interface OfferedTool {
	definition: ToolDefinition;
	available: boolean;
}

interface ActionToolDeclaration {
	name?: string;
	description?: string;
	parameters?: JsonObject;
	tags?: string[];
	output_schema?: JsonObject;
	annotations?: ToolAnnotations;
}

interface GlobalToolsLocals {
	/** Debounce timer and single-flight state of the action-tool sync. */
	syncTimer: NodeJS.Timeout | null;
	syncing: Promise<void> | null;
	syncAgain: boolean;
}

interface GlobalToolsMethods {
	seedBuiltins(): Promise<void>;
	offeredActionTools(): Map<string, OfferedTool>;
	syncActionTools(): Promise<void>;
	scheduleActionToolSync(): void;
	/** Stores a new global tool; another registry node storing the same name first is not an error. */
	createGlobal(tool: StoredTool): Promise<void>;
	/** Updates a global tool and announces the change; `next` returns `current` to leave it. */
	changeGlobal(id: string, next: (current: StoredTool) => StoredTool): Promise<void>;
	/** Gives a built-in stored by an earlier release this release's definition, as a new version. */
	followRelease(existing: StoredTool, definition: ToolDefinition): Promise<void>;
}

/**
 * The global tools the registry keeps by itself: the built-in ones, seeded at start, and one per
 * Moleculer action that declares `tool`, kept in step with the actions the cluster offers.
 */
export function GlobalToolsMixin(): Partial<ServiceSchema> {
	type This = Service & GlobalToolsLocals & GlobalToolsMethods & CatalogHost;
	const now = () => new Date().toISOString();

	const mixin: Partial<ServiceSchema<object, GlobalToolsMethods, GlobalToolsLocals, This>> = {
		methods: {
			async seedBuiltins(this: This) {
				for (const definition of BUILTIN_TOOLS) {
					const existing = await this.store.findByName(GLOBAL_TENANT, definition.name);
					if (existing) {
						await this.followRelease(existing, definition);
						continue;
					}
					await this.createGlobal({
						id: newId(),
						tenant_id: GLOBAL_TENANT,
						...this.withDefaults(definition),
						version: 1,
						status: "active",
						health: UNKNOWN_HEALTH,
						created_at: now(),
						updated_at: now()
					});
				}
			},

			async createGlobal(this: This, tool: StoredTool) {
				// Several registry nodes may store it at once: the name index lets exactly one win.
				await this.store.create(tool).then(
					created =>
						this.broker.broadcast("tool.registered", {
							tenant_id: GLOBAL_TENANT,
							tool: this.present(created)
						}),
					err => {
						if (!isNameTaken(err)) throw err;
					}
				);
			},

			async changeGlobal(this: This, id: string, next: (current: StoredTool) => StoredTool) {
				let written = false;
				const updated = await this.store.update(id, current => {
					const changed = next(current);
					written = changed !== current;
					return changed;
				});
				if (updated && written) this.announceUpdated(this.broker, updated);
			},

			async followRelease(this: This, existing: StoredTool, definition: ToolDefinition) {
				if (!isEarlierBuiltin(existing, definition)) return;
				const release = this.withDefaults(definition);
				// The hashed fields are the release's; permissions, timeout, status and the rest of the
				// metadata stay the operator's. Checked again on the current record: registry nodes may start
				// together, and only one of them makes the new version.
				await this.changeGlobal(existing.id, current =>
					isEarlierBuiltin(current, definition)
						? {
								...current,
								description: release.description,
								parameters: release.parameters,
								config: release.config,
								output_schema: release.output_schema,
								annotations: release.annotations,
								metadata: { ...current.metadata, builtin_release: BUILTIN_RELEASE },
								definition_hash: release.definition_hash,
								version: current.version + 1,
								updated_at: now()
							}
						: current
				);
			},

			offeredActionTools(this: This): Map<string, OfferedTool> {
				const offered = new Map<string, OfferedTool>();
				for (const item of this.broker.registry.getActionList({ skipInternal: true })) {
					const action = item.action as { tool?: ActionToolDeclaration; params?: unknown } | undefined;
					if (!action?.tool || isReservedAction(item.name)) continue;
					const declared = action.tool;
					const name = declared.name ?? item.name.replace(/\./g, "_");
					offered.set(name, {
						available: item.available,
						definition: {
							name,
							type: "moleculer_action",
							// The declaration should describe the tool; without one agents still get what it calls.
							description: declared.description?.trim() || `Calls the Moleculer action ${item.name}`,
							parameters: declared.parameters ?? paramsToJsonSchema(action.params),
							config: { action: item.name },
							metadata: { tags: declared.tags ?? [], auto_registered: true },
							output_schema: declared.output_schema,
							annotations: declared.annotations
						}
					});
				}
				return offered;
			},

			/**
			 * Makes the global catalog match the actions that declare `tool`: new ones registered,
			 * changed declarations updated, and tools whose action no node offers marked `disabled`.
			 * Every registry node may run it; the store's atomic writes make concurrent runs converge.
			 */
			async syncActionTools(this: This) {
				const offered = this.offeredActionTools();
				for (const { definition, available } of offered.values()) {
					const status: ToolStatus = available ? "active" : "disabled";
					const existing = await this.store.findByName(GLOBAL_TENANT, definition.name);
					if (!existing) {
						const report = await this.checkDefinition(this.broker, definition as unknown as JsonObject);
						if (!report.valid) {
							this.logger.warn(
								`Action tool '${definition.name}' is invalid and not registered`,
								report.errors
							);
							continue;
						}
						await this.createGlobal({
							id: newId(),
							tenant_id: GLOBAL_TENANT,
							...this.withDefaults(definition),
							version: 1,
							status,
							health: UNKNOWN_HEALTH,
							validation: report,
							created_at: now(),
							updated_at: now()
						});
						continue;
					}
					if (existing.metadata.auto_registered !== true) {
						this.logger.warn(
							`Action tool '${definition.name}' clashes with a global tool of that name; skipped`
						);
						continue;
					}
					const wanted = this.withDefaults(definition);
					const differs = (tool: StoredTool) =>
						tool.definition_hash !== wanted.definition_hash ||
						JSON.stringify(tool.metadata) !== JSON.stringify(wanted.metadata);
					if (!differs(existing) && existing.status === status) continue;
					await this.changeGlobal(existing.id, current => ({
						...current,
						...(differs(current) ? { ...wanted, version: current.version + 1 } : {}),
						status,
						updated_at: now()
					}));
				}
				// Auto-registered tools whose action is gone from every node.
				let after: string | undefined;
				do {
					const page = await this.store.list(
						[GLOBAL_TENANT],
						{ type: "moleculer_action", status: "active" },
						200,
						after
					);
					for (const tool of page.items)
						if (tool.metadata.auto_registered === true && !offered.has(tool.name))
							await this.changeGlobal(tool.id, current => ({
								...current,
								status: "disabled",
								updated_at: now()
							}));
					after = page.last_id ?? undefined;
				} while (after);
			},

			/** Coalesces bursts of topology changes into one sync, never two at once. */
			scheduleActionToolSync(this: This) {
				if (this.syncTimer) clearTimeout(this.syncTimer);
				this.syncTimer = setTimeout(() => {
					this.syncTimer = null;
					if (this.syncing) {
						this.syncAgain = true;
						return;
					}
					this.syncing = this.syncActionTools()
						.catch(err => this.logger.warn("Action tool sync failed; it runs again on the next change", err))
						.finally(() => {
							this.syncing = null;
							if (this.syncAgain) {
								this.syncAgain = false;
								this.scheduleActionToolSync();
							}
						});
				}, 100);
			}
		},

		events: {
			// Local event on every node whenever any node's services change.
			"$services.changed"(this: This) {
				this.scheduleActionToolSync();
			}
		},

		async started(this: This) {
			this.syncTimer = null;
			this.syncing = null;
			this.syncAgain = false;
			await this.seedBuiltins();
			this.scheduleActionToolSync();
		},

		async stopped(this: This) {
			if (this.syncTimer) clearTimeout(this.syncTimer);
			await this.syncing;
		}
	};
	return mixin as Partial<ServiceSchema>;
}
