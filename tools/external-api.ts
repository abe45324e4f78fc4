import { isIP } from "node:net";
import type { AddressGuard } from "../lib/outbound/address-guard";
import {
	DEFAULT_MAX_RESPONSE_BYTES,
	guardedRequest,
	OutboundError,
	OutboundRefused,
	OutboundTimeout,
	type GuardedRequestOptions,
	type GuardedResponse
} from "../lib/outbound/guarded-fetch";
import { probeOrigin } from "../lib/outbound/probe";
import type { JsonObject, ValidationProblem } from "../types/wire";
import { ToolFailure, type BaseTool, type ToolContext } from "./base";

const MAX_RESPONSE_BYTES_LIMIT = 5 * 1024 * 1024;
const PLACEHOLDER = /\{\{\s*([^{}\s]+)\s*\}\}/g;
const WHOLE_PLACEHOLDER = /^\{\{\s*([^{}\s]+)\s*\}\}$/;
const BODY_METHODS = new Set(["POST", "PUT", "PATCH"]);
/** Header names as RFC 9110 allows them (token characters). */
const HEADER_NAME = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";

const stringMap = (propertyNames?: JsonObject): JsonObject => ({
	type: "object",
	additionalProperties: { type: "string", maxLength: 4096 },
	...(propertyNames && { propertyNames })
});

const configSchema: JsonObject = {
	type: "object",
	properties: {
		url: { type: "string", minLength: 1, maxLength: 2048, pattern: "^[Hh][Tt][Tt][Pp][Ss]?://" },
		method: { enum: ["GET", "POST", "PUT", "PATCH", "DELETE"], default: "GET" },
		headers: stringMap({ pattern: HEADER_NAME }),
		query: stringMap(),
		body_template: {},
		response_path: { type: "string", maxLength: 200, pattern: "^[^.]+(\\.[^.]+)*$" },
		max_response_bytes: { type: "integer", minimum: 1, maximum: MAX_RESPONSE_BYTES_LIMIT }
	},
	required: ["url"],
	additionalProperties: false
};

function checkConfig(config: JsonObject, addresses: AddressGuard): ValidationProblem[] {
	if (typeof config.url !== "string") return [];
	const problem = (message: string) => [{ field: "config.url", message }];
	if (!URL.canParse(config.url)) return problem("must be a valid URL");
	const url = new URL(config.url);
	if (url.protocol !== "http:" && url.protocol !== "https:") return problem("must use http or https");
	if (url.username || url.password) return problem("must not contain credentials; use headers");
	if (url.hostname.includes("{")) return problem("placeholders are allowed in the path and query only");
	// A name is judged by the address it resolves to when the tool runs; a literal address now.
	const literal = url.hostname.replace(/^\[(.*)\]$/, "$1");
	if (isIP(literal)) {
		const port = Number(url.port) || (url.protocol === "https:" ? 443 : 80);
		const refusal = addresses.refusal(literal, undefined, port);
		if (refusal)
			return problem(`outbound address refused: ${literal} (${refusal}; OUTBOUND_ALLOW_HOSTS opens it)`);
	}
	return [];
}

const paramValue = (params: JsonObject, name: string): unknown =>
	Object.hasOwn(params, name) ? params[name] : undefined;

/** How a parameter reads inside a string: strings as they are, other values as JSON, absent as empty. */
const asText = (value: unknown): string =>
	value === undefined || value === null ? "" : typeof value === "string" ? value : JSON.stringify(value);

/** Placeholders substitute parameters; each one used is recorded in `used`. */
class Templater {
	readonly used = new Set<string>();

	constructor(private readonly params: JsonObject) {}

	text(template: string, encode: (value: string) => string = value => value): string {
		return template.replace(PLACEHOLDER, (_match, name: string) => {
			this.used.add(name);
			return encode(asText(paramValue(this.params, name)));
		});
	}

	/** A string that is only `{{name}}` takes the parameter's JSON value (absent → key left out). */
	json(template: unknown): unknown {
		if (typeof template === "string") {
			const whole = WHOLE_PLACEHOLDER.exec(template);
			if (!whole) return this.text(template);
			this.used.add(whole[1]);
			return paramValue(this.params, whole[1]);
		}
		if (Array.isArray(template)) return template.map(item => this.json(item));
		if (template !== null && typeof template === "object") {
			const entries = Object.entries(template).map(([key, value]) => [key, this.json(value)]);
			return Object.fromEntries(entries);
		}
		return template;
	}
}

const stringEntries = (value: unknown): [string, string][] =>
	value !== null && typeof value === "object"
		? Object.entries(value).filter((entry): entry is [string, string] => typeof entry[1] === "string")
		: [];

function pathSafe(value: string): string {
	if (value === "." || value === "..")
		throw new ToolFailure("tool_error", "a parameter value cannot be '.' or '..' in a URL");
	return encodeURIComponent(value);
}

function buildRequest(params: JsonObject, config: JsonObject): { url: string } & GuardedRequestOptions {
	const method = typeof config.method === "string" ? config.method : "GET";
	const templater = new Templater(params);
	// Encoded, a value stays inside its path segment or query value; "." and ".." (even encoded)
	// would still be read as dot segments by the URL parser and climb out of their segment.
	const url = new URL(templater.text(String(config.url), pathSafe));
	for (const [name, value] of stringEntries(config.query)) {
		url.searchParams.append(name, templater.text(value));
	}
	const headers: Record<string, string> = {};
	for (const [name, value] of stringEntries(config.headers)) headers[name] = templater.text(value);

	let body: string | undefined;
	if (config.body_template !== undefined) body = JSON.stringify(templater.json(config.body_template));
	else if (BODY_METHODS.has(method)) body = JSON.stringify(params);
	else {
		for (const [name, value] of Object.entries(params)) {
			if (templater.used.has(name)) continue;
			for (const item of Array.isArray(value) ? value : [value]) {
				url.searchParams.append(name, asText(item));
			}
		}
	}
	const hasContentType = Object.keys(headers).some(name => name.toLowerCase() === "content-type");
	if (body !== undefined && !hasContentType) headers["Content-Type"] = "application/json";
	return { url: url.href, method, headers, body };
}

/** `response_path` such as `data.items.0`; a step that does not exist gives undefined. */
function atPath(data: unknown, path: string): unknown {
	let current = data;
	for (const step of path.split(".")) {
		const found = current !== null && typeof current === "object" && Object.hasOwn(current, step);
		if (!found) return undefined;
		current = (current as Record<string, unknown>)[step];
	}
	return current;
}

function parseBody(body: Buffer, contentType: string | undefined): unknown {
	const text = body.toString("utf8");
	if (!contentType || !/\bjson\b/i.test(contentType)) return text;
	try {
		return JSON.parse(text);
	} catch {
		return text;
	}
}

async function send(params: JsonObject, config: JsonObject, context: ToolContext): Promise<GuardedResponse> {
	const { url, ...request } = buildRequest(params, config);
	const maxResponseBytes =
		typeof config.max_response_bytes === "number" ? config.max_response_bytes : DEFAULT_MAX_RESPONSE_BYTES;
	try {
		return await guardedRequest(url, {
			...request,
			signal: context.signal,
			timeoutMs: context.timeout_ms,
			allowHosts: context.env.outbound_allow_hosts,
			maxResponseBytes
		});
	} catch (err) {
		// A refused destination is the tool's configuration at fault, not the upstream.
		if (err instanceof OutboundRefused) throw new ToolFailure("tool_error", err.message);
		if (err instanceof OutboundTimeout || context.signal.aborted) {
			throw new ToolFailure("timeout", `upstream did not answer within ${context.timeout_ms} ms`);
		}
		if (err instanceof OutboundError) throw new ToolFailure("upstream_error", err.message);
		// undici refuses header values with control characters before sending anything.
		if ((err as Error).name === "InvalidArgumentError")
			throw new ToolFailure("tool_error", `the request cannot be sent: ${(err as Error).message}`);
		throw err;
	}
}

async function execute(params: JsonObject, config: JsonObject, context: ToolContext): Promise<JsonObject> {
	const response = await send(params, config, context);
	const { status } = response;
	if (status >= 400) throw new ToolFailure("upstream_error", `upstream answered ${status}`);
	const data = parseBody(response.body, response.headers["content-type"]);
	const path = config.response_path;
	return { status, data: (typeof path === "string" ? atPath(data, path) : data) ?? null };
}

export const externalApiTool: BaseTool = {
	type: "external_api",
	callsOut: true,
	parameters: { type: "object", properties: {}, additionalProperties: true },
	configSchema,
	checkConfig,
	probe: (config, options) => probeOrigin(String(config.url), options),
	execute
};
