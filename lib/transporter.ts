import { Transporters, type BrokerOptions } from "moleculer";

/**
 * Moleculer's NATS transporter, except that stopping always closes the connection. Moleculer's own
 * closes it only after a successful flush; a flush sent while NATS is unreachable is rejected at the
 * client's next reconnect attempt, and the connection of the stopped broker would then live on,
 * subscribed and reconnecting for ever.
 */
export class NatsTransporter extends Transporters.NATS {
	override async disconnect(): Promise<void> {
		const client = this.client as { flush(): Promise<void>; close(): Promise<void> } | null;
		if (!client) return;
		await client.flush().catch(() => undefined);
		await client.close();
		this.client = null;
	}
}

/** The broker's transporter for a `TRANSPORTER` value: NATS URLs get the transporter above. */
export function transporterFor(url: string | undefined): BrokerOptions["transporter"] {
	if (!url) return null;
	// Moleculer accepts a connection string too, though its types list only names.
	return url.startsWith("nats://") ? new NatsTransporter(url) : (url as BrokerOptions["transporter"]);
}
