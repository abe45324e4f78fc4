import ipaddr from "ipaddr.js";

type Address = ipaddr.IPv4 | ipaddr.IPv6;
type Cidr = [Address, number];

/**
 * Cloud instance-metadata endpoints. Some are public addresses (Azure's wireserver), so ranges alone
 * miss them, and they hand out credentials: only an allow-list entry naming the exact address opens one.
 */
const METADATA = new Set(
	[
		"169.254.169.254",
		"169.254.170.2",
		"169.254.170.23",
		"100.100.100.200",
		"168.63.129.16",
		"fd00:ec2::254",
		"fd00:ec2::23"
	].map(address => ipaddr.process(address).toString())
);

/** The only IPv6 space allocated for global unicast. */
const GLOBAL_UNICAST_V6 = ipaddr.parseCIDR("2000::/3");
/** Well-known NAT64 prefix: the last 32 bits are the IPv4 destination the gateway connects to. */
const NAT64_WELL_KNOWN = ipaddr.parseCIDR("64:ff9b::/96");
/** Deprecated IPv4-compatible addresses; ipaddr.js already reads `::a.b.c.d` as IPv4-mapped. */
const IPV4_COMPATIBLE = ipaddr.parseCIDR("::/96");

/** The IPv4 address an IPv6 address hands traffic to, with the mechanism's name, when it embeds one. */
function embeddedIPv4(address: ipaddr.IPv6): [string, ipaddr.IPv4] | null {
	const bytes = address.toByteArray();
	if (address.match(NAT64_WELL_KNOWN)) return ["nat64", new ipaddr.IPv4(bytes.slice(12))];
	if (address.match(IPV4_COMPATIBLE)) return ["ipv4Compatible", new ipaddr.IPv4(bytes.slice(12))];
	if (address.range() === "6to4") return ["6to4", new ipaddr.IPv4(bytes.slice(2, 6))];
	return null;
}

/**
 * Why an address is not publicly routable, or null when it is. IPv4 must be plain unicast: loopback,
 * private, link-local, CGNAT, unspecified, multicast, broadcast, reserved, AS112 and AMT are refused.
 * IPv6 must be global unicast (2000::/3, none of its special ranges); NAT64, 6to4 and IPv4-compatible
 * addresses are judged by the IPv4 they embed. IPv4-mapped addresses arrive here as IPv4 already.
 */
function intrinsicRefusal(address: Address): string | null {
	if (METADATA.has(address.toString())) return "metadata";
	if (address.kind() === "ipv4") {
		const range = address.range();
		return range === "unicast" ? null : range;
	}
	const v6 = address as ipaddr.IPv6;
	const range = v6.range();
	// Inside ::/96 too, but no IPv4 behind them.
	if (range === "loopback" || range === "unspecified") return range;
	const embedded = embeddedIPv4(v6);
	if (embedded) {
		const reason = intrinsicRefusal(embedded[1]);
		return reason && `${embedded[0]} embedding ${reason}`;
	}
	if (range !== "unicast") return range;
	return v6.match(GLOBAL_UNICAST_V6) ? null : "not global unicast";
}

/** Host names compare the way DNS does: case-insensitive, a trailing root dot changes nothing. */
function normaliseHostname(hostname: string): string {
	return hostname.toLowerCase().replace(/\.$/, "");
}

/** One OUTBOUND_ALLOW_HOSTS entry's port: a number allows only that port, `null` every port. */
type Port = number | null;

/**
 * Splits `host:port`, `[ipv6]:port` and bare entries. A port is 1-65535; anything else after the last
 * colon of a non-IPv6 entry makes the entry name nothing (returns null).
 */
function splitPort(entry: string): [string, Port] | null {
	const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
	const [host, port] = bracketed
		? [bracketed[1], bracketed[2]]
		: /^[^:]*:[^:]*$/.test(entry)
			? entry.split(":")
			: [entry, undefined];
	if (port === undefined) return [host, null];
	const number = /^\d{1,5}$/.test(port) ? Number(port) : 0;
	return number >= 1 && number <= 65535 ? [host, number] : null;
}

/** Whether an entry's port admits a connection to `port` (unknown when the caller has none to give). */
const admits = (entryPort: Port, port: number | undefined) => entryPort === null || entryPort === port;

/**
 * Decides which addresses outbound requests may reach. `allowEntries` (OUTBOUND_ALLOW_HOSTS) are
 * host names (exact, case-insensitive), IP addresses or CIDRs, each optionally with `:port` (IPv6 in
 * brackets: `[fd00::1]:8443`, `[fd00::/8]:443`); a matching entry opens an otherwise refused
 * destination, e.g. an on-premise API on a private address. An entry with a port opens only that
 * port, so a redirect to another service of the same host stays refused; without one it opens every
 * port. An entry that parses as none of these allows nothing.
 */
export class AddressGuard {
	private readonly hostnames = new Map<string, Port[]>();
	private readonly addresses = new Map<string, Port[]>();
	private readonly ranges: [Cidr, Port][] = [];

	constructor(allowEntries: readonly string[] = []) {
		for (const raw of allowEntries) {
			const split = splitPort(raw.trim());
			if (!split) continue;
			const [entry, port] = split;
			if (ipaddr.isValidCIDR(entry)) this.ranges.push([ipaddr.parseCIDR(entry), port]);
			else if (ipaddr.isValid(entry)) add(this.addresses, ipaddr.process(entry).toString(), port);
			else if (URL.canParse(`http://${entry}`)) {
				// The URL parser gives the same punycode/lowercase form the request's host will have;
				// an entry with more than a host (a path, credentials, a bad CIDR) names no host.
				const { href, hostname } = new URL(`http://${entry}`);
				if (href === `http://${hostname}/`) add(this.hostnames, normaliseHostname(hostname), port);
			}
		}
	}

	/**
	 * Why `address` (reached for `hostname`, when it came from DNS, on `port`) must not be connected
	 * to, or null when it may be. Without a port only entries that open every port apply.
	 */
	refusal(address: string, hostname?: string, port?: number): string | null {
		if (!ipaddr.isValid(address)) return "not an IP address";
		// process() turns IPv4-mapped IPv6 into the IPv4 it reaches, so both spellings match alike.
		const parsed = ipaddr.process(address);
		// A zone only ever scopes link-local addresses; refusing it keeps the string keys below exact.
		if (parsed.kind() === "ipv6" && (parsed as ipaddr.IPv6).zoneId) return "scoped address";
		const key = parsed.toString();
		if (this.addresses.get(key)?.some(p => admits(p, port))) return null;
		if (METADATA.has(key)) return "metadata";
		const allowed =
			(hostname !== undefined &&
				(this.hostnames.get(normaliseHostname(hostname))?.some(p => admits(p, port)) ?? false)) ||
			this.ranges.some(
				([range, p]) => range[0].kind() === parsed.kind() && parsed.match(range) && admits(p, port)
			);
		return allowed ? null : intrinsicRefusal(parsed);
	}
}

function add(entries: Map<string, Port[]>, key: string, port: Port): void {
	entries.set(key, [...(entries.get(key) ?? []), port]);
}

/** Whether a listen address (`HOST`) accepts connections from this machine only. */
export function isLoopbackAddress(host: string): boolean {
	if (host === "localhost") return true;
	return ipaddr.isValid(host) && ipaddr.process(host).range() === "loopback";
}
