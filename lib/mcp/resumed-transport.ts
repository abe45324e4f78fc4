import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";

/** The SDK transport's inner state that an `initialize` request sets. */
interface InnerTransport {
	sessionId?: string;
	_initialized?: boolean;
}

/**
 * Marks a fresh transport as serving an existing session, as if its `initialize` had come here: the
 * session was opened on another gateway node and its caller reconnected to this one. The SDK (1.x)
 * offers no public way to do this; if its internals change, this throws rather than serve a
 * transport that refuses every request.
 */
export function resumeTransport(transport: StreamableHTTPServerTransport, sessionId: string): void {
	const inner = (transport as unknown as { _webStandardTransport?: InnerTransport })._webStandardTransport;
	if (!inner || inner._initialized !== false)
		throw new Error("This SDK version's transport cannot resume a session opened elsewhere");
	inner.sessionId = sessionId;
	inner._initialized = true;
}
