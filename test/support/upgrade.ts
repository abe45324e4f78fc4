import net from "net";

/** A WebSocket upgrade request to `path` on the gateway at `url`; resolves the head it answered with. */
export function upgrade(url: string, path: string, headers: Record<string, string> = {}): Promise<string> {
	return new Promise((resolve, reject) => {
		const { port } = new URL(url);
		const extra = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`);
		const socket = net.connect(Number(port), "127.0.0.1", () =>
			socket.write(
				`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
					`Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra.join("")}\r\n`
			)
		);
		let answer = "";
		socket.on("data", chunk => (answer += chunk.toString()));
		socket.on("close", () => resolve(answer.split("\r\n\r\n")[0]));
		socket.on("error", reject);
	});
}
