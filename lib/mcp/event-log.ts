import type { EventStore } from "@modelcontextprotocol/sdk/server/streamableHttp.js";

/**
 * The replay logs of MCP sessions' SSE streams, so a client that lost a stream reconnects with
 * `Last-Event-ID` and gets what it missed. One log per session: the SDK names the standalone GET
 * stream alike in every session, and a replay must never cross sessions. Bounded: past `capacity`
 * events a session's oldest go first, and a client that was away longer misses them.
 *
 * Shared logs (Redis) also record whose each session is, so a gateway node that never saw a
 * session can resume it for the same caller: the reconnect may reach any node. Logs in memory
 * belong to this process: no other node resumes them, and they end with their session.
 */
export interface McpSessionLogs {
	/** The event log of one session's transport (one per transport), new or already written by another node. */
	eventStore(sessionId: string): EventStore;
	/** Records (or renews) whose session this is, for `ttlMs` from now. */
	claim(sessionId: string, owner: string): Promise<void>;
	/** Whose the session is, or null when no node may resume it (unknown, expired, or not shared). */
	ownerOf(sessionId: string): Promise<string | null>;
	/** The client ended the session: its record and events go. */
	forget(sessionId: string): Promise<void>;
}

export interface McpSessionLogOptions {
	/** Events kept per session. */
	capacity: number;
	/** A shared session's record and events are kept this long after its last activity. */
	ttlMs: number;
}

/** Event ids are the session's sequence numbers, as text. */
export const sequenceOf = (eventId: string): number | null =>
	/^[1-9]\d{0,15}$/.test(eventId) ? Number(eventId) : null;

/** The priming event ({}) of a stream only carries an id: there is nothing in it to replay. */
export const isReplayable = (message: object): boolean => "jsonrpc" in message;
