import { MemoryAuditLog } from "../../lib/audit/memory-audit-log";
import type { AuditDraft } from "../../lib/audit/audit-log";

const draft = (n: number): AuditDraft => ({
	tenant_id: "acme",
	actor: { kind: "service" },
	action: "tool.execute",
	target: `tool:${n}`,
	outcome: "completed"
});

/** Fills a trail to `cap` entries, then times `appends` more, each of which drops the oldest. */
function fullTrailAppends(cap: number, appends: number) {
	const log = new MemoryAuditLog({ maxEntries: cap, maxAgeMs: Number.MAX_SAFE_INTEGER });
	for (let i = 0; i < cap; i++) log.appendNow(draft(i));
	const started = process.hrtime.bigint();
	for (let i = cap; i < cap + appends; i++) log.appendNow(draft(i));
	return { log, ms: Number(process.hrtime.bigint() - started) / 1e6 };
}

describe("MemoryAuditLog", () => {
	it("keeps the newest maxEntries entries of a full trail", async () => {
		const { log } = fullTrailAppends(1000, 250);
		const page = await log.list("acme", { limit: 1000 });
		expect(page.items).toHaveLength(1000);
		expect(page.items[0].target).toBe("tool:1249");
		expect(page.items.at(-1)!.target).toBe("tool:250");
	});

	it("drops the oldest entry of a full trail in constant time, however long the trail", () => {
		// On an array, each append to a full trail of 100,000 moved every entry: about 100 µs each.
		fullTrailAppends(1000, 5000); // warms the code up
		const short = fullTrailAppends(1000, 5000).ms;
		const long = fullTrailAppends(100_000, 5000).ms;
		expect(long).toBeLessThan(short * 10 + 50);
	});
});
