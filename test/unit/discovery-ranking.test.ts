import { reciprocalRankFusion, weightedFusion } from "../../lib/discovery/fusion";
import { TenantIndex } from "../../lib/discovery/tenant-index";
import { GLOBAL_TENANT } from "../../lib/tenancy";
import { cosine, decodeVector, encodeVector, normalize, quantize } from "../../lib/discovery/vectors";
import { gist, toNative } from "../../lib/formats/native";
import { BUILTIN_TOOLS } from "../../lib/builtin-tools";
import { TOOL_CORPUS } from "../fixtures/tool-corpus";
import type { StoredTool } from "../../types/wire";

let ids = 0;
const tool = (name: string, description: string, extra: Partial<StoredTool> = {}): StoredTool => ({
	id: `tool-${++ids}`,
	tenant_id: "t",
	name,
	description,
	type: "datetime",
	parameters: { type: "object", properties: {} },
	config: {},
	metadata: {},
	permissions: { agents: ["*"] },
	timeout_ms: 5000,
	version: 1,
	definition_hash: `sha256:${name}`,
	status: "active",
	health: { state: "unknown" },
	created_at: "2026-01-01T00:00:00.000Z",
	updated_at: "2026-01-01T00:00:00.000Z",
	...extra
});

/** A unit vector pointing mostly along `axis` of 8 dimensions. */
const along = (axis: number, spill = 0.1) =>
	normalize(Array.from({ length: 8 }, (_, i) => (i === axis ? 1 : spill)));

describe("fusion", () => {
	const lexical = [
		{ id: "a", score: 10 },
		{ id: "b", score: 5 }
	];
	const semantic = [
		{ id: "c", score: 0.8 },
		{ id: "b", score: 0.7 }
	];

	it("RRF puts a candidate of both rankings first and says which ranking found each", () => {
		const fused = reciprocalRankFusion(lexical, semantic);
		expect(fused.map(f => [f.id, f.match])).toEqual([
			["b", "both"],
			["a", "lexical"],
			["c", "semantic"]
		]);
	});

	it("weighted fusion gives each ranking its share by strength: a weak lexical hit loses to a strong meaning", () => {
		const weakLexical = [{ id: "junk", score: 1 }];
		const strongSemantic = [
			{ id: "right", score: 0.7 },
			{ id: "junk", score: 0.2 }
		];
		const fused = weightedFusion(weakLexical, strongSemantic, 0.4, 0.2);
		expect(fused[0]).toEqual({ id: "right", score: 0.6, match: "semantic" });
		expect(fused[1]).toMatchObject({ id: "junk", match: "both" });
		expect(fused[1].score).toBeCloseTo(0.4);
	});

	it("weighted fusion keeps the lexical order when there is no semantic candidate", () => {
		expect(weightedFusion(lexical, [], 0.4, 0.2).map(f => [f.id, f.score])).toEqual([
			["a", 0.4],
			["b", 0.2]
		]);
	});
});

describe("vectors", () => {
	it("quantizes to int8 with a cosine within 0.01 of Float32, and survives encoding", () => {
		const a = normalize(Array.from({ length: 512 }, (_, i) => Math.sin(i)));
		const b = normalize(Array.from({ length: 512 }, (_, i) => Math.sin(i * 1.3) + 0.2));
		const exact = a.reduce((sum, x, i) => sum + x * b[i], 0);
		const stored = decodeVector(encodeVector(quantize(b)))!;
		expect(stored.values).toHaveLength(512);
		expect(Math.abs(cosine(a, stored) - exact)).toBeLessThan(0.01);
		expect(decodeVector(Buffer.alloc(2))).toBeNull();
	});
});

describe("TenantIndex", () => {
	const rain = tool("weather_forecast", "Multi-day weather forecast");
	const money = tool("currency_convert", "Convert an amount between currencies");
	const hidden = tool("rain_radar", "Precipitation radar", { permissions: { agents: ["meteo"] } });
	const pending = tool("storm_alerts", "Storm warnings", { status: "pending_validation" });
	const down = tool("rain_gauge", "Rainfall measured by gauges", { health: { state: "unreachable" } });
	const index = new TenantIndex("t");
	index.upsert(rain, quantize(along(0)));
	index.upsert(money, quantize(along(1)));
	index.upsert(hidden, quantize(along(0, 0.05)));
	index.upsert(pending, quantize(along(0)));
	index.upsert(down, quantize(along(0, 0.15)));
	const umbrella = along(0, 0.12);

	const names = (query: Parameters<TenantIndex["query"]>[0]) => index.query(query).map(r => r.tool.name);

	it("ranks by meaning a query that shares no word with the tool", () => {
		expect(names({ query: "umbrella", limit: 1, agentId: null, vector: umbrella, mode: "semantic" })).toEqual(
			["weather_forecast"]
		);
		expect(names({ query: "umbrella", limit: 5, agentId: null, vector: null })).toEqual([]);
	});

	it("filters permissions, status, type and health before ranking and limit, in every mode", () => {
		// The query's vector is the hidden tool's own: it would come first for anyone allowed to see it.
		const vector = along(0, 0.05);
		for (const mode of ["hybrid", "semantic"] as const) {
			const q = { query: "radar", limit: 1, agentId: "someone", vector, mode };
			expect([mode, names({ ...q, agentId: "meteo" })]).toEqual([mode, ["rain_radar"]]);
			const best = names(q);
			expect([mode, best.length, best.includes("rain_radar")]).toEqual([mode, 1, false]);
			const all = names({ ...q, limit: 10 });
			expect([mode, all.includes("storm_alerts"), all.includes("rain_gauge")]).toEqual([mode, false, true]);
			expect([mode, names({ ...q, limit: 10, healthyOnly: true }).includes("rain_gauge")]).toEqual([
				mode,
				false
			]);
			expect([mode, names({ ...q, types: ["calculator"] })]).toEqual([mode, []]);
		}
	});

	it("admits a tool only while it is usable: after changes of status and permissions, a freed slot reused, a global tool shadowed", () => {
		const changing = new TenantIndex("t");
		// More tools than the per-slot flags first hold.
		for (let i = 0; i < 100; i++) changing.upsert(tool(`filler_${i}`, "Unrelated filler"));
		const target = tool("sleet_map", "Sleet map");
		changing.upsert(target);
		const found = (agentId: string | null = null) =>
			changing.query({ query: "sleet", limit: 5, agentId, mode: "lexical" }).map(r => r.tool.id);
		expect(found()).toEqual([target.id]);
		// Filters still apply to a tool open to every agent.
		const filtered = (filters: { types?: string[]; tags?: string[]; healthyOnly?: boolean }) =>
			changing
				.query({ query: "sleet", limit: 5, agentId: null, mode: "lexical", ...filters })
				.map(r => r.tool.id);
		expect(filtered({ types: ["calculator"] })).toEqual([]);
		expect(filtered({ tags: ["none"] })).toEqual([]);
		changing.upsert({ ...target, health: { state: "unreachable" } });
		expect(filtered({ healthyOnly: true })).toEqual([]);
		expect(found()).toEqual([target.id]);
		changing.upsert({ ...target, status: "disabled" });
		expect(found()).toEqual([]);
		changing.upsert({ ...target, permissions: { agents: ["meteo"] } });
		expect(found()).toEqual([]);
		expect(found("meteo")).toEqual([target.id]);
		changing.remove(target.id);
		const reusing = tool("sleet_gauge", "Sleet gauge", { permissions: { agents: ["meteo"] } });
		changing.upsert(reusing);
		expect(found()).toEqual([]);
		expect(found("meteo")).toEqual([reusing.id]);
		// A global tool is usable until the tenant has its own tool of that name.
		const global = tool("sleet_alerts", "Sleet alerts", { tenant_id: GLOBAL_TENANT });
		changing.upsert(global);
		expect(found()).toEqual([global.id]);
		const own = tool("sleet_alerts", "Our sleet alerts");
		changing.upsert(own);
		expect(found()).toEqual([own.id]);
	});

	it("ranks a tool lexically until its vector arrives, then by meaning too", () => {
		const asked: string[] = [];
		const late = new TenantIndex("t", t => asked.push(t.name));
		const fresh = tool("umbrella_shop", "Sells umbrellas");
		late.upsert(fresh);
		expect(asked).toEqual(["umbrella_shop"]);
		expect(late.pendingVectors).toBe(1);
		const q = { query: "umbrella", limit: 5, agentId: null, vector: umbrella };
		expect(late.query(q).map(r => r.match)).toEqual(["lexical"]);
		late.attachVector(fresh.definition_hash, quantize(along(0)));
		expect(late.pendingVectors).toBe(0);
		expect(late.query(q).map(r => r.match)).toEqual(["both"]);
	});

	it("lists every usable tool by name without a query, page by page, and again after a change", () => {
		const listed = new TenantIndex("t");
		for (const name of ["delta", "Alpha", "charlie", "bravo", "echo"]) listed.upsert(tool(name, "x"));
		listed.upsert(tool("foxtrot", "x", { permissions: { agents: ["meteo"] } }));
		const page = (offset: number, limit: number, agentId: string | null = null) =>
			listed.query({ limit, offset, agentId }).map(r => [r.tool.name, r.score]);
		expect(page(0, 10)).toEqual(["Alpha", "bravo", "charlie", "delta", "echo"].map(n => [n, 0]));
		expect(page(1, 2)).toEqual([
			["bravo", 0],
			["charlie", 0]
		]);
		expect(page(4, 2, "meteo")).toEqual([
			["echo", 0],
			["foxtrot", 0]
		]);
		listed.upsert(tool("aardvark", "x"));
		expect(page(0, 1)).toEqual([["aardvark", 0]]);
	});

	it("answers a repeated query from its cache, which any change to the tenant's tools empties", () => {
		const cached = new TenantIndex("t");
		cached.upsert(tool("hail_report", "Hail reports"));
		const q = { query: "hail", limit: 5, agentId: null, mode: "lexical" as const };
		const first = cached.query(q);
		expect(cached.query(q)).toEqual(first);
		const storm = tool("hail_storm_map", "Map of hail storms", { permissions: { agents: ["meteo"] } });
		cached.upsert(storm);
		expect(cached.query(q).map(r => r.tool.name)).toEqual(["hail_report"]);
		// The agent is part of what a ranking is remembered by.
		expect(cached.query({ ...q, agentId: "meteo" }).map(r => r.tool.name)).toContain("hail_storm_map");
		cached.upsert({ ...storm, permissions: { agents: ["*"] } });
		expect(cached.query(q).map(r => r.tool.name)).toContain("hail_storm_map");
		cached.remove(storm.id);
		expect(cached.query(q).map(r => r.tool.name)).toEqual(["hail_report"]);
	});
});

describe("summary view", () => {
	const withLongParameters = (t: StoredTool): StoredTool => ({
		...t,
		parameters: {
			type: "object",
			properties: { location: { type: "string", description: "x".repeat(1500) } }
		}
	});

	it("keeps the contract's fields only: id, name, the description's gist, type, score and health state", () => {
		const tools = [
			tool(
				"weather_forecast",
				"Multi-day weather forecast for a location: daily highs and lows, chance of rain or snow."
			),
			tool("currency_convert", "Convert money between currencies (e.g. dollars to euros). Rates hourly.", {
				health: { state: "healthy" }
			}),
			tool("rain_gauge", "Rainfall by gauge", { health: { state: "unreachable", error: "timeout" } })
		].map(withLongParameters);
		const ranked = tools.map(t => ({ tool: t, score: 0.51234, match: "both" as const }));
		const summary = toNative(ranked, "summary");
		expect(summary.items).toEqual([
			{
				id: tools[0].id,
				name: "weather_forecast",
				description: "Multi-day weather forecast for a location",
				type: "datetime",
				score: 0.512,
				health: { state: "unknown" }
			},
			{
				id: tools[1].id,
				name: "currency_convert",
				description: "Convert money between currencies",
				type: "datetime",
				score: 0.512,
				health: { state: "healthy" }
			},
			{
				id: tools[2].id,
				name: "rain_gauge",
				description: "Rainfall by gauge",
				type: "datetime",
				score: 0.512,
				health: { state: "unreachable" }
			}
		]);
		expect(JSON.stringify(toNative(ranked)).length / tools.length).toBeGreaterThan(1500);
	});

	it("cuts the gist at a sentence (not at an abbreviation), a clause break, or a word", () => {
		expect(gist("Search Jira tickets with JQL, e.g. open bugs. Paged.")).toBe(
			"Search Jira tickets with JQL, e.g. open bugs"
		);
		expect(gist("Page the on-call engineer — now; or later")).toBe("Page the on-call engineer");
		expect(gist("Short: cut")).toBe("Short: cut");
		expect(gist("")).toBe("");
		const long = gist("word ".repeat(100));
		expect(long.length).toBeLessThanOrEqual(120);
		expect(long.endsWith("…")).toBe(true);
	});

	it("takes under 225 bytes a tool on the relevance corpus", () => {
		const ranked = [...TOOL_CORPUS, ...BUILTIN_TOOLS].map((definition, i) => ({
			tool: tool(definition.name, definition.description ?? "", {
				id: `0193a7c2-5e1f-7b2a-9c4d-${String(i).padStart(12, "0")}`,
				type: definition.type,
				health: { state: "healthy" }
			}),
			score: 0.8123
		}));
		const perTool = JSON.stringify(toNative(ranked, "summary")).length / ranked.length;
		expect(perTool).toBeLessThan(225);
	});
});
