import net from "node:net";

import {
	context,
	failure,
	fakeDns,
	port,
	received,
	run,
	side,
	upstreamUrl,
	useStandIns
} from "../support/external-api";

/** The external_api tool against local stand-ins (setup: test/support/external-api.ts): refused destinations and allow-list entries with a port. */

useStandIns();

describe("SSRF: refused destinations", () => {
	// PORT is the forbidden listener's port, known only once it listens.
	it.each([
		"http://127.0.0.1:PORT/",
		"http://localhost:PORT/",
		"http://LOCALHOST:PORT/",
		"http://2130706433:PORT/",
		"http://0177.0.0.1:PORT/",
		"http://0x7f.0.0.1:PORT/",
		"http://127.1:PORT/",
		"http://0.0.0.0:PORT/",
		"http://[::1]:PORT/",
		"http://[::]:PORT/",
		"http://[::ffff:127.0.0.1]:PORT/",
		"http://[::ffff:7f00:1]:PORT/",
		"http://[::7f00:1]:PORT/",
		"http://[64:ff9b::127.0.0.1]:PORT/",
		"https://127.0.0.1:PORT/",
		"http://169.254.169.254/latest/meta-data/",
		"http://[fd00:ec2::254]/latest/meta-data/",
		"http://[::ffff:a9fe:a9fe]/",
		"http://10.0.0.1/",
		"http://192.168.1.1/",
		"http://172.16.0.1/",
		"http://100.64.0.1/",
		"http://[fe80::1]/",
		"file:///etc/passwd",
		"ftp://127.0.0.1:PORT/",
		"gopher://127.0.0.1:PORT/_GET%20/",
		"http://user:pass@example.com/",
		"http://user@127.0.0.2:PORT/echo"
	])("refuses %s before connecting", async target => {
		const connects = jest.spyOn(net, "connect");
		const err = await failure({ url: target.replace("PORT", String(port)) });
		expect(err.type).toBe("tool_error");
		expect(err.message).toMatch(/^outbound (address|URL) refused: /);
		// No socket was ever opened towards an IP address; a name (localhost) fails in its lookup.
		const hosts = connects.mock.calls.map(call => (call[0] as { host?: string }).host ?? "");
		expect(hosts.filter(host => net.isIP(host))).toEqual([]);
		expect(received).toEqual([]);
	});

	it("keeps the message free of internal detail beyond the host", async () => {
		const err = await failure({ url: `http://localhost:${port}/` });
		expect(err.message).toBe("outbound address refused: localhost");
	});

	it("refuses a name resolving to a private address, without connecting", async () => {
		fakeDns({ "internal.test": [["10.0.0.1"]] });
		const err = await failure({ url: "http://internal.test/" });
		expect(err).toMatchObject({ type: "tool_error", message: "outbound address refused: internal.test" });
	});

	it("refuses a name when any of its addresses is refused", async () => {
		fakeDns({ "mixed.test": [["127.0.0.2", "127.0.0.1"]] });
		const err = await failure({ url: `http://mixed.test:${port}/echo` });
		expect(err.type).toBe("tool_error");
		expect(received).toEqual([]);
	});

	it("connects to the address it checked: a name rebinding to loopback after the check", async () => {
		const lookups = fakeDns({ "rebind.test": [["127.0.0.2"], ["127.0.0.1"]] });
		const result = await run({ url: `http://rebind.test:${port}/echo` });
		expect(result.status).toBe(200);
		expect(lookups).toEqual(["rebind.test"]);
		expect(received.map(r => r.at)).toEqual(["127.0.0.2"]);
		// The next request resolves again and meets the rebound address: refused.
		expect((await failure({ url: `http://rebind.test:${port}/echo` })).type).toBe("tool_error");
	});

	it.each(["/to-loopback", "/to-localhost", "/to-metadata", "/to-file"])(
		"refuses a redirect from an allowed upstream (%s)",
		async path => {
			const err = await failure({ url: upstreamUrl(path) });
			expect(err.type).toBe("tool_error");
			expect(err.message).toMatch(/^outbound (address|URL) refused: /);
			expect(received.map(r => r.url)).toEqual([path]);
		}
	);

	it("refuses everything private when the allow-list is empty", async () => {
		const err = await failure({ url: upstreamUrl("/echo") }, {}, context({ allow: [] }));
		expect(err).toMatchObject({ type: "tool_error", message: "outbound address refused: 127.0.0.2" });
	});
});

describe("allow-list entries with a port", () => {
	beforeEach(() => {
		side.connections = 0;
	});

	it("opens only that port of an address: a redirect to another port of the same host is refused", async () => {
		const allow = [`127.0.0.2:${port}`];
		expect(await run({ url: upstreamUrl("/echo") }, {}, context({ allow }))).toMatchObject({ status: 200 });
		const err = await failure({ url: upstreamUrl("/to-side-port") }, {}, context({ allow }));
		expect(err).toMatchObject({ type: "tool_error", message: "outbound address refused: 127.0.0.2" });
		expect(received.map(r => r.url)).toEqual(["/echo", "/to-side-port"]);
		expect(side.connections).toBe(0);
	});

	it("opens only that port of a host name, checked on every hop", async () => {
		fakeDns({ "upstream.test": [["127.0.0.2"]] });
		const allow = [`upstream.test:${port}`];
		const url = `http://upstream.test:${port}/to-side-port-by-name`;
		const err = await failure({ url }, {}, context({ allow }));
		expect(err).toMatchObject({ type: "tool_error", message: "outbound address refused: upstream.test" });
		expect(side.connections).toBe(0);
		// Without a port the entry opens every port of the host, the side service included.
		expect(await run({ url }, {}, context({ allow: ["upstream.test"] }))).toMatchObject({ status: 200 });
		expect(side.connections).toBe(1);
	});

	it("reads CIDR:port entries", async () => {
		const allow = [`127.0.0.0/24:${port}`];
		expect(await run({ url: upstreamUrl("/echo") }, {}, context({ allow }))).toMatchObject({ status: 200 });
		expect((await failure({ url: `http://127.0.0.2:${side.port}/echo` }, {}, context({ allow }))).type).toBe(
			"tool_error"
		);
		expect(side.connections).toBe(0);
	});
});
