import type { Service, ServiceSchema } from "moleculer";
import { isResealable } from "../lib/store/reseal";
import type { AuditMethods } from "./audit.mixin";

interface ResealLocals {
	resealing: Promise<void>;
}

/**
 * After a rotation of SECRETS_KEY, seals again in the background what the host keeps sealed under an
 * earlier key (or in clear) in its `local` (a store or a queue; the Redis ones can do it), and records
 * it as `key.rotate` in the trail of each tenant whose records changed. `records` names them in the
 * entry (`tools`, `sources`, `tasks`). Needs AuditMixin.
 */
export function ResealMixin(records: string, local = "store"): Partial<ServiceSchema> {
	type This = Service & ResealLocals & AuditMethods;
	const mixin: Partial<ServiceSchema<object, object, ResealLocals, This>> = {
		started(this: This) {
			const store = (this as unknown as Record<string, unknown>)[local];
			this.resealing = isResealable(store)
				? store.reseal().then(
						async ({ key_id, resealed }) => {
							const total = [...resealed.values()].reduce((sum, count) => sum + count, 0);
							if (total === 0) return;
							this.logger.info(`Sealed ${total} stored ${records} records under SECRETS_KEY ${key_id}`);
							for (const [tenant_id, count] of resealed)
								await this.recordAudit({
									tenant_id,
									actor: { kind: "service" },
									action: "key.rotate",
									target: `secrets-key:${key_id}`,
									outcome: "success",
									details: { [records]: count }
								});
						},
						err =>
							this.logger.warn(`Re-encrypting stored ${records} failed; it runs again on the next start`, err)
					)
				: Promise.resolve();
		},
		async stopped(this: This) {
			await this.resealing;
		}
	};
	return mixin as Partial<ServiceSchema>;
}
