import { LATEST_PROTOCOL_VERSION } from "@modelcontextprotocol/sdk/types.js";
import { ManualClock } from "../support/manual-clock";
import { INITIALIZE } from "../support/mcp";
import { http, startNode, type TestNode } from "../support/node";

jest.setTimeout(60000);

describe("MCP session caps", () => {
	let node: TestNode;
	// Sessions' silence is measured on this clock: the test moves it instead of waiting.
	const clock = new ManualClock();
	const post = (token: string, message: unknown, session?: string) =>
		fetch(`${node.url}/mcp`, {
			method: "POST",
			headers: {
				authorization: `Bearer ${token}`,
				"content-type": "application/json",
				accept: "application/json, text/event-stream",
				"mcp-protocol-version": LATEST_PROTOCOL_VERSION,
				...(session ? { "mcp-session-id": session } : {})
			},
			body: JSON.stringify(message)
		});
	/** Opens a session; resolves its id, or the refusal's status. */
	const open = async (
		token: string
	): Promise<{ status: number; session: string | null; retryAfter: string | null }> => {
		const res = await post(token, INITIALIZE);
		await res.text();
		return {
			status: res.status,
			session: res.headers.get("mcp-session-id"),
			retryAfter: res.headers.get("retry-after")
		};
	};
	const ping = async (token: string, session: string) => {
		const res = await post(token, { jsonrpc: "2.0", id: 2, method: "ping" }, session);
		await res.text();
		return res.status;
	};
	const sessionCount = () =>
		(node.broker.getLocalService("api") as unknown as { mcp: { sessionCount: number } }).mcp.sessionCount;
	const keyFor = async (tenant: string) => {
		const res = await http(node.url, "POST", "/api/v1/keys", {
			tenant,
			body: { tenant_id: tenant, scopes: ["tools:read"] }
		});
		return res.body.api_key as string;
	};

	beforeAll(async () => {
		node = await startNode({
			settings: {
				mcpSessions: { maxSessionsPerCredential: 3, maxSessions: 5, evictIdleAfterMs: 5000 },
				clock
			}
		});
	});

	afterAll(() => node.stop());

	it("caps sessions per credential and in all with 429, and makes room by closing the longest-silent one", async () => {
		const [a, b, c] = [await keyFor("mcp-cap-a"), await keyFor("mcp-cap-b"), await keyFor("mcp-cap-c")];
		// A hostile key opening sessions as fast as it can, all at once: it gets its share and no more.
		const burst = await Promise.all(Array.from({ length: 20 }, () => open(a)));
		expect(burst.filter(r => r.status === 200)).toHaveLength(3);
		const refused = burst.filter(r => r.status !== 200);
		expect(refused.map(r => [r.status, r.retryAfter])).toEqual(refused.map(() => [429, "1"]));
		const [first, second, third] = burst.filter(r => r.status === 200).map(r => r.session!);

		// Another key fills the gateway; a third finds it full.
		expect((await open(b)).status).toBe(200);
		expect((await open(b)).status).toBe(200);
		expect(await open(c)).toMatchObject({ status: 429, retryAfter: "1" });
		expect(sessionCount()).toBe(5);

		// Once sessions have been silent long enough, the longest-silent one of the key makes room.
		await clock.advance(5001);
		expect(await ping(a, second)).toBe(200);
		expect(await ping(a, third)).toBe(200);
		const fresh = await open(a);
		expect(fresh.status).toBe(200);
		expect(await ping(a, first)).toBe(404);
		expect(await ping(a, second)).toBe(200);
		// ...and a silent session of anyone makes room for a new credential at the total cap.
		expect((await open(c)).status).toBe(200);
		expect(sessionCount()).toBe(5);
	});
});
