import type { EventId, EventStore, StreamId } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";

/**
 * The recent events of one MCP session's SSE streams, so a client that lost a stream can
 * reconnect with `Last-Event-ID` and get what it missed. One log per session: the SDK names the
 * standalone GET stream alike in every session, and a replay must never cross sessions. Bounded:
 * past `capacity` events the oldest go first, and a client that was away longer misses them.
 */
export class SessionEventLog implements EventStore {
	private readonly events = new Map<EventId, { streamId: StreamId; message: JSONRPCMessage }>();
	private sequence = 0;

	constructor(private readonly capacity = 256) {}

	async storeEvent(streamId: StreamId, message: JSONRPCMessage): Promise<EventId> {
		const eventId = `${++this.sequence}`;
		this.events.set(eventId, { streamId, message });
		// Map iteration is insertion order: the first key is the oldest event.
		if (this.events.size > this.capacity) this.events.delete(this.events.keys().next().value!);
		return eventId;
	}

	async getStreamIdForEventId(eventId: EventId): Promise<StreamId | undefined> {
		return this.events.get(eventId)?.streamId;
	}

	async replayEventsAfter(
		lastEventId: EventId,
		{ send }: { send: (eventId: EventId, message: JSONRPCMessage) => Promise<void> }
	): Promise<StreamId> {
		const last = this.events.get(lastEventId);
		if (!last) throw new Error("That event is no longer kept");
		const after = Number(lastEventId);
		for (const [eventId, event] of this.events)
			// The priming event ({}) only carried an id: there is nothing in it to replay.
			if (Number(eventId) > after && event.streamId === last.streamId && "jsonrpc" in event.message)
				await send(eventId, event.message);
		return last.streamId;
	}
}
