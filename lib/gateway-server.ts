import http, { type RequestListener, type ServerResponse } from "http";
import type { Duplex } from "stream";
import { refuseOnSocket } from "./error-response";
import { badRequest, requestTimeout, headersTooLarge } from "./errors";

/** The response a socket is serving, as Node's http server attaches it (absent between keep-alive requests). */
interface InFlight {
	_httpMessage?: ServerResponse | null;
}

/** Node checks each connection's deadlines this often: a tenth of the timeout, at most its default 30 s. */
const checkingInterval = (requestTimeoutMs: number) =>
	Math.min(30000, Math.max(50, Math.floor(requestTimeoutMs / 10)));

/**
 * The gateway's HTTP server, in place of moleculer-web's plain one. A request's headers and body must
 * arrive within `requestTimeoutMs` (Node's default is 300 s, so a client sending a body slower than
 * its Content-Length held a connection for five minutes); and a request Node refuses before any route
 * sees it (too slow, malformed, headers too large) is answered with the same JSON error body as every
 * route's, where Node would send a status line alone.
 */
export function createGatewayServer(handler: RequestListener, requestTimeoutMs: number): http.Server {
	const server = http.createServer(
		{
			requestTimeout: requestTimeoutMs,
			headersTimeout: Math.min(60000, requestTimeoutMs),
			connectionsCheckingInterval: checkingInterval(requestTimeoutMs)
		},
		handler
	);
	server.on("clientError", (err: NodeJS.ErrnoException, socket: Duplex & InFlight) => {
		const inFlight = socket._httpMessage;
		// Node's own rule: once the response in flight on the socket has sent its headers, or the client
		// is gone, there is nothing left to answer. Stricter than Node: a response in flight for a request
		// that arrived whole belongs to an earlier pipelined request, which the client would read this
		// error as the answer to (a tool call that ran would look never received, and be sent again).
		if (err.code === "ECONNRESET" || !socket.writable || inFlight?.headersSent || inFlight?.req.complete)
			return void socket.destroy();
		refuseOnSocket(socket, clientErrorOf(err, requestTimeoutMs));
	});
	return server;
}

function clientErrorOf(err: NodeJS.ErrnoException, requestTimeoutMs: number) {
	if (err.code === "ERR_HTTP_REQUEST_TIMEOUT")
		return requestTimeout(`The request did not arrive within ${requestTimeoutMs} ms`);
	if (err.code === "HPE_HEADER_OVERFLOW") return headersTooLarge();
	return badRequest("Malformed HTTP request", "BAD_REQUEST");
}
