import { checkParametersSchema, createAjv } from "../../lib/json-schema";
import { type ToolContext, ToolFailure } from "../../tools/base";
import { datetimeTool } from "../../tools/datetime";
import type { JsonObject } from "../../types/wire";

const context = (): ToolContext => ({
	tenant_id: "t1",
	agent_id: null,
	execution_id: "e1",
	signal: new AbortController().signal,
	timeout_ms: 1000,
	call: async () => {
		throw new Error("unused");
	},
	env: { outbound_allow_hosts: [] }
});

const run = (params: JsonObject): Promise<JsonObject> => datetimeTool.execute(params, {}, context());

async function failure(params: JsonObject): Promise<ToolFailure> {
	const err: unknown = await run(params).then(
		() => undefined,
		(e: unknown) => e
	);
	expect(err).toBeInstanceOf(ToolFailure);
	expect((err as ToolFailure).type).toBe("tool_error");
	return err as ToolFailure;
}

const message = async (params: JsonObject): Promise<string> => (await failure(params)).message;

describe("datetime tool", () => {
	it("offers schemas the registry accepts", () => {
		const ajv = createAjv();
		expect(checkParametersSchema(ajv, datetimeTool.parameters)).toEqual([]);
		const validate = ajv.compile(datetimeTool.configSchema);
		expect(validate({})).toBe(true);
		expect(validate({ anything: 1 })).toBe(false);
		const params = ajv.compile(datetimeTool.parameters);
		expect(params({ operation: "add", datetime: "2024-01-01", amount: -2, unit: "days" })).toBe(true);
		expect(params({ operation: "later" })).toBe(false);
		expect(params({ operation: "now", extra: true })).toBe(false);
	});

	it("loads the time-zone data when the executor starts (its start step), not in the first call", async () => {
		await expect(datetimeTool.start!()).resolves.toBeUndefined();
	});

	describe("now", () => {
		it("defaults to UTC and agrees with the clock", async () => {
			const before = Date.now();
			const result = await run({ operation: "now" });
			const after = Date.now();
			expect(result.timezone).toBe("UTC");
			expect(result.iso).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
			expect(result.epoch_ms).toBeGreaterThanOrEqual(before);
			expect(result.epoch_ms).toBeLessThanOrEqual(after);
			expect(Date.parse(result.iso as string)).toBe(result.epoch_ms);
		});

		it("renders the time in the requested zone, keeping the caller's zone name", async () => {
			const result = await run({ operation: "now", timezone: "Asia/Kolkata" });
			expect(result.timezone).toBe("Asia/Kolkata");
			expect(result.iso).toMatch(/\+05:30$/);
			expect(Date.parse(result.iso as string)).toBe(result.epoch_ms);
		});

		it("fixes the case of a zone name", async () => {
			const zoneOf = async (timezone: string) => (await run({ operation: "now", timezone })).timezone;
			expect(await zoneOf("america/new_york")).toBe("America/New_York");
			expect(await zoneOf("utc")).toBe("UTC");
		});
	});

	describe("convert", () => {
		it("converts a UTC instant to New York daylight time", async () => {
			const result = await run({
				operation: "convert",
				datetime: "2024-03-10T12:00:00Z",
				to_timezone: "America/New_York"
			});
			expect(result).toEqual({ iso: "2024-03-10T08:00:00.000-04:00", timezone: "America/New_York" });
		});

		it("uses standard time before the DST change", async () => {
			const result = await run({
				operation: "convert",
				datetime: "2024-03-09T12:00:00Z",
				to_timezone: "America/New_York"
			});
			expect(result.iso).toBe("2024-03-09T07:00:00.000-05:00");
		});

		it("reads a date-time without offset in `timezone`", async () => {
			const result = await run({
				operation: "convert",
				datetime: "2024-07-01T09:00:00",
				timezone: "Europe/Berlin",
				to_timezone: "Asia/Tokyo"
			});
			expect(result).toEqual({ iso: "2024-07-01T16:00:00.000+09:00", timezone: "Asia/Tokyo" });
		});

		it("keeps the instant of a date-time with an explicit offset, whatever `timezone` says", async () => {
			const result = await run({
				operation: "convert",
				datetime: "2024-07-01T09:00:00+02:00",
				timezone: "America/Los_Angeles",
				to_timezone: "UTC"
			});
			expect(result).toEqual({ iso: "2024-07-01T07:00:00.000Z", timezone: "UTC" });
		});
	});

	describe("add", () => {
		it("adds one calendar day across the spring-forward change (23 hours later)", async () => {
			const result = await run({
				operation: "add",
				datetime: "2024-03-09T12:00:00",
				timezone: "America/New_York",
				amount: 1,
				unit: "days"
			});
			expect(result).toEqual({ iso: "2024-03-10T12:00:00.000-04:00", timezone: "America/New_York" });
		});

		it("adds 24 hours across the same change (wall clock moves to 13:00)", async () => {
			const result = await run({
				operation: "add",
				datetime: "2024-03-09T12:00:00",
				timezone: "America/New_York",
				amount: 24,
				unit: "hours"
			});
			expect(result.iso).toBe("2024-03-10T13:00:00.000-04:00");
		});

		it("subtracts with a negative amount and clamps month ends", async () => {
			const result = await run({
				operation: "add",
				datetime: "2024-03-31T10:00:00Z",
				amount: -1,
				unit: "months"
			});
			expect(result).toEqual({ iso: "2024-02-29T10:00:00.000Z", timezone: "UTC" });
		});

		it("adds milliseconds", async () => {
			const result = await run({
				operation: "add",
				datetime: "2024-01-01T00:00:00Z",
				amount: 1500,
				unit: "milliseconds"
			});
			expect(result.iso).toBe("2024-01-01T00:00:01.500Z");
		});
	});

	describe("diff", () => {
		it("counts days and hours between two instants", async () => {
			const base = { operation: "diff", from: "2024-01-01T00:00:00Z", to: "2024-01-02T12:00:00Z" };
			expect(await run({ ...base, unit: "days" })).toEqual({ value: 1.5, unit: "days", iso: "P1.5D" });
			expect(await run({ ...base, unit: "hours" })).toEqual({ value: 36, unit: "hours", iso: "PT36H" });
		});

		it("defaults to seconds and goes negative when `to` is earlier", async () => {
			const result = await run({
				operation: "diff",
				from: "2024-01-01T01:00:00Z",
				to: "2024-01-01T00:00:00Z"
			});
			expect(result).toEqual({ value: -3600, unit: "seconds", iso: "PT-3600S" });
		});

		it("counts a DST day as one calendar day but 23 hours", async () => {
			const base = {
				operation: "diff",
				timezone: "America/New_York",
				from: "2024-03-10T00:00:00",
				to: "2024-03-11T00:00:00"
			};
			expect((await run({ ...base, unit: "days" })).value).toBe(1);
			expect((await run({ ...base, unit: "hours" })).value).toBe(23);
		});
	});

	describe("format", () => {
		it("formats with luxon tokens in the given zone", async () => {
			const result = await run({
				operation: "format",
				datetime: "2024-03-10T12:00:00Z",
				timezone: "America/New_York",
				format: "cccc, LLLL d yyyy HH:mm ZZZZ"
			});
			expect(result).toEqual({
				formatted: "Sunday, March 10 2024 08:00 EDT",
				iso: "2024-03-10T08:00:00.000-04:00",
				timezone: "America/New_York"
			});
		});

		it("defaults to ISO-8601", async () => {
			const result = await run({ operation: "format", datetime: "2024-03-10T12:00:00Z" });
			expect(result).toEqual({
				formatted: "2024-03-10T12:00:00.000Z",
				iso: "2024-03-10T12:00:00.000Z",
				timezone: "UTC"
			});
		});
	});

	describe("failures", () => {
		it("rejects an impossible date, naming the field", async () => {
			const err = await failure({ operation: "format", datetime: "2024-02-30" });
			expect(err.message).toMatch(/"datetime" is not a valid ISO-8601 date-time/);
			expect(err.message).toMatch(/30/);
		});

		it("rejects text that is no date", async () => {
			const err = await failure({ operation: "diff", from: "2024-01-01T00:00:00Z", to: "not-a-date" });
			expect(err.message).toMatch(/"to" is not a valid ISO-8601 date-time/);
		});

		it("rejects an unknown zone in either zone field", async () => {
			expect(await message({ operation: "now", timezone: "Mars/Base" })).toBe(
				'"timezone": unknown time zone "Mars/Base"'
			);
			const convert = { operation: "convert", datetime: "2024-01-01T00:00:00Z", to_timezone: "Mars/Base" };
			expect(await message(convert)).toMatch(/"to_timezone": unknown time zone/);
		});

		it("names the missing field of each operation", async () => {
			expect(await message({ operation: "convert", to_timezone: "UTC" })).toBe(
				'"datetime" is required for operation "convert"'
			);
			expect(await message({ operation: "convert", datetime: "2024-01-01" })).toBe(
				'"to_timezone" is required for operation "convert"'
			);
			expect(await message({ operation: "add", amount: 1, unit: "days" })).toMatch(/"datetime" is required/);
			expect(await message({ operation: "add", datetime: "2024-01-01", unit: "days" })).toMatch(
				/"amount" is required/
			);
			const noUnit = { operation: "add", datetime: "2024-01-01", amount: 1 };
			expect(await message(noUnit)).toMatch(/"unit" is required/);
			expect(await message({ operation: "diff", to: "2024-01-01" })).toMatch(/"from" is required/);
		});

		it("rejects a bad unit, operation or field type", async () => {
			const bad = { operation: "add", datetime: "2024-01-01", amount: 1, unit: "fortnights" };
			expect(await message(bad)).toMatch(/"unit" must be one of years, months/);
			expect(await message({ operation: "yesterday" })).toMatch(/"operation" must be one of/);
			const textAmount = { operation: "add", datetime: "2024-01-01", amount: "1", unit: "days" };
			expect(await message(textAmount)).toMatch(/"amount" must be a finite number/);
			expect(await message({ operation: "format", datetime: 20240101 })).toBe('"datetime" must be a string');
			const longFormat = { operation: "format", datetime: "2024-01-01", format: "x".repeat(101) };
			expect(await message(longFormat)).toMatch(/"format" must be at most 100 characters/);
		});

		it("rejects an amount that leaves the representable range", async () => {
			for (const [amount, unit] of [
				[1e9, "years"],
				[-1e9, "years"],
				[1e20, "milliseconds"]
			] as const) {
				const err = await failure({ operation: "add", datetime: "2024-01-01T00:00:00Z", amount, unit });
				expect(err.message).toMatch(/out of the representable range/);
			}
		});
	});
});
