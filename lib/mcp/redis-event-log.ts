import { runScript, type RedisClient } from "../redis";
import type { EventId, EventStore, StreamId } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import { isReplayable, sequenceOf, type McpSessionLogOptions, type McpSessionLogs } from "./event-log";

/** Appends an event at the session's next sequence number, keeps the newest ARGV[3], renews both keys. */
const STORE = `
local id = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], id, id .. '\\n' .. ARGV[1] .. '\\n' .. ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[3]) + 1))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return id
`;

interface Entry {
	eventId: EventId;
	streamId: StreamId;
	message: JSONRPCMessage;
}

/** An entry is `id \n streamId \n message JSON`: the id makes each member unique. */
const parse = (member: string): Entry => {
	const first = member.indexOf("\n");
	const second = member.indexOf("\n", first + 1);
	return {
		eventId: member.slice(0, first),
		streamId: member.slice(first + 1, second),
		message: JSON.parse(member.slice(second + 1)) as JSONRPCMessage
	};
};

/** One session's log in Redis, written and read by whichever gateway node holds the session. */
class RedisEventStore implements EventStore {
	constructor(
		private readonly redis: RedisClient,
		private readonly keys: { events: string; sequence: string },
		private readonly options: McpSessionLogOptions
	) {}

	async storeEvent(streamId: StreamId, message: JSONRPCMessage): Promise<EventId> {
		const { events, sequence } = this.keys;
		const id = await runScript(
			this.redis,
			STORE,
			2,
			events,
			sequence,
			streamId,
			JSON.stringify(message),
			this.options.capacity,
			this.options.ttlMs
		);
		return String(id);
	}

	async getStreamIdForEventId(eventId: EventId): Promise<StreamId | undefined> {
		return (await this.entry(eventId))?.streamId;
	}

	async replayEventsAfter(
		lastEventId: EventId,
		{ send }: { send: (eventId: EventId, message: JSONRPCMessage) => Promise<void> }
	): Promise<StreamId> {
		const last = await this.entry(lastEventId);
		if (!last) throw new Error("That event is no longer kept");
		const later = await this.redis.zrangebyscore(this.keys.events, `(${last.eventId}`, "+inf");
		for (const entry of later.map(parse))
			if (entry.streamId === last.streamId && isReplayable(entry.message))
				await send(entry.eventId, entry.message);
		return last.streamId;
	}

	private async entry(eventId: EventId): Promise<Entry | null> {
		const sequence = sequenceOf(eventId);
		if (sequence === null) return null;
		const [member] = await this.redis.zrangebyscore(this.keys.events, sequence, sequence);
		return member === undefined ? null : parse(member);
	}
}

/**
 * Logs shared by every gateway node on one Redis. Layout under the prefix: `mcp-session:{id}` the
 * owner of a session; `mcp-events:{id}` sorted set of its events by sequence; `mcp-events-seq:{id}`
 * its sequence. All expire `ttlMs` after the session's last event or renewal.
 */
export class RedisSessionLogs implements McpSessionLogs {
	constructor(
		private readonly redis: RedisClient,
		private readonly prefix: string,
		private readonly options: McpSessionLogOptions
	) {}

	private keys = (sessionId: string) => ({
		owner: `${this.prefix}mcp-session:{${sessionId}}`,
		events: `${this.prefix}mcp-events:{${sessionId}}`,
		sequence: `${this.prefix}mcp-events-seq:{${sessionId}}`
	});

	eventStore(sessionId: string): EventStore {
		return new RedisEventStore(this.redis, this.keys(sessionId), this.options);
	}

	async claim(sessionId: string, owner: string): Promise<void> {
		const { owner: key, events, sequence } = this.keys(sessionId);
		await this.redis
			.multi()
			.set(key, owner, "PX", this.options.ttlMs)
			.pexpire(events, this.options.ttlMs)
			.pexpire(sequence, this.options.ttlMs)
			.exec();
	}

	async ownerOf(sessionId: string): Promise<string | null> {
		return this.redis.get(this.keys(sessionId).owner);
	}

	async forget(sessionId: string): Promise<void> {
		const { owner, events, sequence } = this.keys(sessionId);
		await this.redis.del(owner, events, sequence);
	}
}
