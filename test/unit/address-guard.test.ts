import { AddressGuard } from "../../lib/outbound/address-guard";

describe("AddressGuard without an allow-list", () => {
	const guard = new AddressGuard();

	it.each([
		["127.0.0.1", "loopback"],
		["127.255.255.254", "loopback"],
		// Other spellings of 127.0.0.1: the guard reads them as the address they are.
		["2130706433", "loopback"],
		["0177.0.0.1", "loopback"],
		["0x7f.0.0.1", "loopback"],
		["127.1", "loopback"],
		["10.1.2.3", "private"],
		["172.16.0.1", "private"],
		["172.31.255.255", "private"],
		["192.168.1.1", "private"],
		["169.254.1.1", "linkLocal"],
		["169.254.169.254", "metadata"],
		["169.254.170.2", "metadata"],
		["168.63.129.16", "metadata"],
		["100.100.100.200", "metadata"],
		["100.64.0.1", "carrierGradeNat"],
		["100.127.255.255", "carrierGradeNat"],
		["0.0.0.0", "unspecified"],
		["0.1.2.3", "unspecified"],
		["224.0.0.1", "multicast"],
		["239.255.255.250", "multicast"],
		["255.255.255.255", "broadcast"],
		["240.0.0.1", "reserved"],
		["192.0.2.10", "reserved"],
		["198.18.0.1", "reserved"],
		["192.0.0.8", "reserved"]
	])("refuses IPv4 %s (%s)", (address, reason) => {
		expect(guard.refusal(address)).toBe(reason);
	});

	it.each([
		["::1", "loopback"],
		["0:0:0:0:0:0:0:1", "loopback"],
		["::", "unspecified"],
		["fe80::1", "linkLocal"],
		["fe80::1%eth0", "scoped address"],
		["fc00::1", "uniqueLocal"],
		["fd12:3456::1", "uniqueLocal"],
		["fd00:ec2::254", "metadata"],
		["ff02::1", "multicast"],
		["fec0::1", "deprecatedSiteLocal"],
		["100::1", "discard"],
		["2001:db8::1", "reserved"],
		["2001::1", "teredo"],
		// IPv4-mapped: checked as the IPv4 address it reaches.
		["::ffff:127.0.0.1", "loopback"],
		["::ffff:7f00:1", "loopback"],
		["::ffff:10.0.0.1", "private"],
		["::ffff:169.254.169.254", "metadata"],
		["::ffff:0.0.0.0", "unspecified"],
		// NAT64, 6to4 and IPv4-compatible addresses are judged by the IPv4 address they carry.
		["64:ff9b::127.0.0.1", "nat64 embedding loopback"],
		["64:ff9b::a9fe:a9fe", "nat64 embedding metadata"],
		["64:ff9b::10.0.0.1", "nat64 embedding private"],
		["::7f00:1", "ipv4Compatible embedding loopback"],
		["::a00:1", "ipv4Compatible embedding private"],
		["::127.0.0.1", "loopback"],
		// Local-use NAT64, IPv4-translated and unallocated space.
		["64:ff9b:1::1", "rfc6052"],
		["::ffff:0:7f00:1", "rfc6145"],
		["4000::1", "not global unicast"],
		["2002:7f00:1::1", "6to4 embedding loopback"],
		["2002:c0a8:101::1", "6to4 embedding private"]
	])("refuses IPv6 %s (%s)", (address, reason) => {
		expect(guard.refusal(address)).toBe(reason);
	});

	it.each(["localhost", "", "1.2.3.4.5", "example.com", "::g"])("refuses %j, not an address", value => {
		expect(guard.refusal(value)).toBe("not an IP address");
	});

	it.each([
		"8.8.8.8",
		"1.1.1.1",
		"93.184.216.34",
		"172.32.0.1",
		"100.128.0.1",
		"2606:4700:4700::1111",
		"2001:4860:4860::8888",
		"::ffff:8.8.8.8",
		"64:ff9b::8.8.8.8",
		"::808:808",
		"2002:808:808::1"
	])("allows public %s", address => {
		expect(guard.refusal(address)).toBeNull();
	});

	it("ignores the host name when no entry names it", () => {
		expect(guard.refusal("10.0.0.5", "api.internal.example")).toBe("private");
		expect(guard.refusal("8.8.8.8", "dns.google")).toBeNull();
	});
});

describe("AddressGuard with OUTBOUND_ALLOW_HOSTS", () => {
	it("opens one address, in either IPv4 or IPv4-mapped form", () => {
		const guard = new AddressGuard(["127.0.0.2"]);
		expect(guard.refusal("127.0.0.2")).toBeNull();
		expect(guard.refusal("::ffff:127.0.0.2")).toBeNull();
		expect(guard.refusal("127.0.0.1")).toBe("loopback");
	});

	it("reads address entries in any notation the URL parser accepts, IPv6 with or without brackets", () => {
		const guard = new AddressGuard(["127.1", " [::1] ", "0x0a.0.0.1"]);
		expect(guard.refusal("127.0.0.1")).toBeNull();
		expect(guard.refusal("::1")).toBeNull();
		expect(guard.refusal("10.0.0.1")).toBeNull();
		expect(guard.refusal("10.0.0.2")).toBe("private");
	});

	it.each([
		[["127.0.0.2/32"], "127.0.0.2", null],
		[["127.0.0.2/32"], "127.0.0.3", "loopback"],
		[["10.0.0.0/8"], "10.20.30.40", null],
		[["10.0.0.0/8"], "172.16.0.1", "private"],
		[["192.168.0.0/16", "172.16.0.0/12"], "172.20.1.1", null],
		[["fd00::/8"], "fd12::1", null],
		[["fd00::/8"], "fc00::1", "uniqueLocal"],
		[["fe80::/10"], "fe80::1", null],
		// A v6 range does not reach v4 addresses, nor the other way round.
		[["::/0"], "10.0.0.1", "private"],
		[["0.0.0.0/0"], "::1", "loopback"]
	])("CIDR %j: %s → %s", (entries, address, reason) => {
		expect(new AddressGuard(entries).refusal(address)).toBe(reason);
	});

	it("opens a metadata address only when an entry names that exact address", () => {
		expect(new AddressGuard(["169.254.0.0/16"]).refusal("169.254.1.1")).toBeNull();
		expect(new AddressGuard(["169.254.0.0/16"]).refusal("169.254.169.254")).toBe("metadata");
		expect(new AddressGuard(["fd00::/8"]).refusal("fd00:ec2::254")).toBe("metadata");
		expect(new AddressGuard(["0.0.0.0/0"]).refusal("168.63.129.16")).toBe("metadata");
		expect(new AddressGuard(["169.254.169.254"]).refusal("169.254.169.254")).toBeNull();
	});

	it("opens every address of an allowed host name, matched exactly and case-insensitively", () => {
		const guard = new AddressGuard(["API.Internal.Example"]);
		expect(guard.refusal("10.0.0.5", "api.internal.example")).toBeNull();
		expect(guard.refusal("127.0.0.1", "API.INTERNAL.EXAMPLE.")).toBeNull();
		expect(guard.refusal("10.0.0.5", "other.internal.example")).toBe("private");
		expect(guard.refusal("10.0.0.5", "x.api.internal.example")).toBe("private");
		expect(guard.refusal("10.0.0.5", "internal.example")).toBe("private");
		// The name allows the host, not the address: reached by IP (no host name), it stays refused.
		expect(guard.refusal("10.0.0.5")).toBe("private");
		expect(guard.refusal("169.254.169.254", "api.internal.example")).toBe("metadata");
	});

	it("matches internationalised host names in their punycode form", () => {
		const guard = new AddressGuard(["BÜCHER.example"]);
		expect(guard.refusal("10.0.0.5", "xn--bcher-kva.example")).toBeNull();
	});

	it("opens only the port an entry names, for addresses, CIDRs and host names", () => {
		const guard = new AddressGuard([
			"10.0.0.1:8080",
			"[fd00::1]:8443",
			"192.168.0.0/16:443",
			"api.internal:9000"
		]);
		expect(guard.refusal("10.0.0.1", undefined, 8080)).toBeNull();
		expect(guard.refusal("10.0.0.1", undefined, 8081)).toBe("private");
		expect(guard.refusal("10.0.0.1")).toBe("private");
		expect(guard.refusal("fd00::1", undefined, 8443)).toBeNull();
		expect(guard.refusal("fd00::1", undefined, 443)).toBe("uniqueLocal");
		expect(guard.refusal("192.168.4.4", undefined, 443)).toBeNull();
		expect(guard.refusal("192.168.4.4", undefined, 80)).toBe("private");
		expect(guard.refusal("10.9.9.9", "api.internal", 9000)).toBeNull();
		expect(guard.refusal("10.9.9.9", "api.internal", 22)).toBe("private");
	});

	it("adds ports of the same host together, and a port-less entry opens them all", () => {
		expect(new AddressGuard(["10.0.0.1:80", "10.0.0.1:443"]).refusal("10.0.0.1", undefined, 443)).toBeNull();
		expect(new AddressGuard(["10.0.0.1:80", "10.0.0.1"]).refusal("10.0.0.1", undefined, 22)).toBeNull();
	});

	it.each([
		["10.0.0.0/33"],
		["10.0.0.1:0"],
		["10.0.0.1:65536"],
		["10.0.0.1:http"],
		["[::1]:x"],
		["api.example/path"],
		["user@api.example"],
		[""],
		["a b"]
	])("an entry that is no host, address or CIDR (%j) allows nothing", entry => {
		const guard = new AddressGuard([entry]);
		expect(guard.refusal("10.0.0.1")).toBe("private");
		expect(guard.refusal("10.0.0.1", undefined, 80)).toBe("private");
		expect(guard.refusal("10.0.0.1", "10.0.0.1")).toBe("private");
		expect(guard.refusal("10.0.0.1", "api.example")).toBe("private");
	});
});
