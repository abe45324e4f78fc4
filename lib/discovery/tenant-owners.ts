import { Strategies, type Context, type ServiceBroker } from "moleculer";

/** How callers route `discover` when discovery is sharded: Moleculer's Shard strategy on the caller's tenant. */
export const TENANT_SHARD_STRATEGY = { strategy: "Shard", strategyOptions: { shardKey: "#tenant_id" } };

/**
 * Which registry node owns a tenant's discovery index: the node Moleculer's Shard strategy picks for
 * the tenant among the nodes offering `action` now (the choice callers configured with
 * `TENANT_SHARD_STRATEGY` make too). Each tenant has one owner, so each node holds about 1/N of the
 * indexes; when a node leaves, its tenants fall to the others, which build them from the store.
 */
export class TenantOwners {
	private readonly shard: InstanceType<typeof Strategies.Shard>;
	private changed = true;

	constructor(
		private readonly broker: ServiceBroker,
		private readonly action: string
	) {
		this.shard = new Strategies.Shard(broker.registry, broker, TENANT_SHARD_STRATEGY.strategyOptions);
	}

	/** Services came or went: the ring is rebuilt on the next question. */
	membershipChanged(): void {
		this.changed = true;
	}

	/** The owning node's id; null when no node offers the action. */
	ownerOf(tenantId: string): string | null {
		const endpoints = this.broker.registry.getActionEndpoints(this.action)?.endpoints ?? [];
		const available = endpoints.filter(endpoint => endpoint.isAvailable);
		if (available.length === 0) return null;
		if (this.changed) {
			// The strategy rebuilds its ring on `$node.*` only; services also move without nodes moving.
			Object.assign(this.shard, { needRebuild: true });
			this.changed = false;
		}
		return this.shard.select(available, { meta: { tenant_id: tenantId } } as unknown as Context).id;
	}

	owns(tenantId: string): boolean {
		const owner = this.ownerOf(tenantId);
		return owner === null || owner === this.broker.nodeID;
	}
}
