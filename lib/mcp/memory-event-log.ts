import type { EventId, EventStore, StreamId } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import { isReplayable, sequenceOf, type McpSessionLogOptions, type McpSessionLogs } from "./event-log";

/** One session's log in this process: it lives with the session's transport. */
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
		const after = sequenceOf(lastEventId)!;
		for (const [eventId, event] of this.events)
			if (Number(eventId) > after && event.streamId === last.streamId && isReplayable(event.message))
				await send(eventId, event.message);
		return last.streamId;
	}
}

/** Logs of a single gateway without Redis: each session's log is its own, and nothing is shared. */
export class MemorySessionLogs implements McpSessionLogs {
	constructor(private readonly options: Pick<McpSessionLogOptions, "capacity">) {}

	eventStore(): EventStore {
		return new SessionEventLog(this.options.capacity);
	}

	async claim(): Promise<void> {}

	async ownerOf(): Promise<string | null> {
		return null;
	}

	async forget(): Promise<void> {}
}
