import { DateTime, Duration } from "luxon";

import type { JsonObject } from "../types/wire";
import { type BaseTool, ToolFailure } from "./base";

const OPERATIONS = ["now", "convert", "add", "diff", "format"] as const;
type Operation = (typeof OPERATIONS)[number];

const UNITS = ["years", "months", "weeks", "days", "hours", "minutes", "seconds", "milliseconds"] as const;
type Unit = (typeof UNITS)[number];

const ZONE_MAX = 64;
const DATETIME_MAX = 64;
const FORMAT_MAX = 100;
const DEFAULT_ZONE = "UTC";
const DEFAULT_DIFF_UNIT: Unit = "seconds";
// Formatting must not depend on the host's locale.
const LOCALE = "en-US";

const stringSchema = (maxLength: number, description: string): JsonObject => ({
	type: "string",
	maxLength,
	description
});

const parameters: JsonObject = {
	type: "object",
	properties: {
		operation: {
			type: "string",
			enum: [...OPERATIONS],
			description:
				"now: current time; convert: datetime to to_timezone; add: datetime + amount unit; " +
				"diff: to - from in unit; format: datetime with format tokens"
		},
		timezone: stringSchema(ZONE_MAX, "IANA zone; date-times without an offset are read in it (default UTC)"),
		to_timezone: stringSchema(ZONE_MAX, "IANA zone to convert to (convert)"),
		datetime: stringSchema(DATETIME_MAX, "ISO-8601 date-time (convert, add, format)"),
		amount: { type: "number", description: "How many units to add, negative to subtract (add)" },
		unit: { type: "string", enum: [...UNITS], description: "Unit of amount (add) or of the result (diff)" },
		from: stringSchema(DATETIME_MAX, "ISO-8601 start (diff)"),
		to: stringSchema(DATETIME_MAX, "ISO-8601 end (diff)"),
		format: {
			type: "string",
			maxLength: FORMAT_MAX,
			description: "Luxon format tokens, e.g. yyyy-MM-dd HH:mm (format; default ISO-8601)"
		}
	},
	required: ["operation"],
	additionalProperties: false
};

function fail(message: string): never {
	throw new ToolFailure("tool_error", message);
}

/** Reads an optional string field; checked here too because a definition may bring its own schema. */
function optionalString(params: JsonObject, field: string, maxLength: number): string | undefined {
	const value = params[field];
	if (value === undefined) return undefined;
	if (typeof value !== "string") fail(`"${field}" must be a string`);
	if (value.length > maxLength) fail(`"${field}" must be at most ${maxLength} characters`);
	return value;
}

function requiredString(params: JsonObject, field: string, maxLength: number, operation: Operation): string {
	const value = optionalString(params, field, maxLength);
	if (value === undefined) fail(`"${field}" is required for operation "${operation}"`);
	return value;
}

/**
 * The zone name as the caller gave it, case fixed (`america/new_york` → `America/New_York`). ICU's
 * canonical name is used only for the case: it maps current names to legacy ones (Asia/Kolkata →
 * Asia/Calcutta), which would surprise a caller.
 */
function zone(name: string, field: string): string {
	let resolved: string;
	try {
		resolved = new Intl.DateTimeFormat(LOCALE, { timeZone: name }).resolvedOptions().timeZone;
	} catch {
		fail(`"${field}": unknown time zone "${name}"`);
	}
	return resolved.toLowerCase() === name.toLowerCase() ? resolved : name;
}

function workingZone(params: JsonObject): string {
	return zone(optionalString(params, "timezone", ZONE_MAX) ?? DEFAULT_ZONE, "timezone");
}

/** An ISO-8601 string with an offset keeps its instant; one without is read in `zoneName`. */
function parseDateTime(params: JsonObject, field: string, zoneName: string, operation: Operation): DateTime {
	const text = requiredString(params, field, DATETIME_MAX, operation);
	const parsed = DateTime.fromISO(text, { zone: zoneName, locale: LOCALE });
	if (!parsed.isValid) {
		fail(`"${field}" is not a valid ISO-8601 date-time: ${parsed.invalidExplanation ?? text}`);
	}
	return parsed;
}

function unit(params: JsonObject, fallback?: Unit): Unit {
	const value = params.unit ?? fallback;
	if (value === undefined) fail(`"unit" is required (one of ${UNITS.join(", ")})`);
	if (!UNITS.includes(value as Unit)) fail(`"unit" must be one of ${UNITS.join(", ")}`);
	return value as Unit;
}

/** toISO() is null only for invalid values, which callers have already ruled out. */
function iso(value: DateTime | Duration): string {
	const text = value.toISO();
	if (text === null) fail("the result is not a representable date-time");
	return text;
}

function operationOf(params: JsonObject): Operation {
	const value = params.operation;
	if (!OPERATIONS.includes(value as Operation)) fail(`"operation" must be one of ${OPERATIONS.join(", ")}`);
	return value as Operation;
}

function run(params: JsonObject): JsonObject {
	const operation = operationOf(params);
	switch (operation) {
		case "now": {
			const timezone = workingZone(params);
			const now = DateTime.now().setZone(timezone);
			return { iso: iso(now), timezone, epoch_ms: now.toMillis() };
		}
		case "convert": {
			const source = parseDateTime(params, "datetime", workingZone(params), operation);
			const timezone = zone(requiredString(params, "to_timezone", ZONE_MAX, operation), "to_timezone");
			return { iso: iso(source.setZone(timezone)), timezone };
		}
		case "add": {
			const timezone = workingZone(params);
			const start = parseDateTime(params, "datetime", timezone, operation);
			const amount = params.amount;
			if (amount === undefined) fail(`"amount" is required for operation "add"`);
			if (typeof amount !== "number" || !Number.isFinite(amount)) fail(`"amount" must be a finite number`);
			const result = start.plus({ [unit(params)]: amount });
			if (!result.isValid) fail(`"amount" ${amount} moves the date-time out of the representable range`);
			return { iso: iso(result), timezone };
		}
		case "diff": {
			// The zone matters for calendar units: a day across a DST change is 23 or 25 hours.
			const timezone = workingZone(params);
			const from = parseDateTime(params, "from", timezone, operation);
			const to = parseDateTime(params, "to", timezone, operation);
			const resultUnit = unit(params, DEFAULT_DIFF_UNIT);
			const duration = to.diff(from, resultUnit);
			return { value: duration.as(resultUnit), unit: resultUnit, iso: iso(duration) };
		}
		case "format": {
			const timezone = workingZone(params);
			const value = parseDateTime(params, "datetime", timezone, operation);
			const tokens = optionalString(params, "format", FORMAT_MAX);
			const isoText = iso(value);
			return { formatted: tokens === undefined ? isoText : value.toFormat(tokens), iso: isoText, timezone };
		}
	}
}

/** Date and time arithmetic in IANA zones (luxon), DST-aware; every result carries an ISO-8601 `iso`. */
export const datetimeTool: BaseTool = {
	type: "datetime",
	parameters,
	configSchema: { type: "object", properties: {}, additionalProperties: false },
	async execute(params) {
		return run(params);
	},

	/** Loads ICU's time-zone data (20 ms on an idle core, 200 ms on a busy one) before a task needs it. */
	async start() {
		run({ operation: "now" });
	}
};
