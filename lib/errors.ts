import { Errors } from "moleculer";

/**
 * Callers' mistakes, with the contract's stable `type` strings (section 7).
 * Each is a MoleculerClientError so it crosses the transporter and reaches REST unchanged.
 */
const { MoleculerClientError } = Errors;

export const badRequest = (message: string, type = "BAD_REQUEST", data?: unknown) =>
	new MoleculerClientError(message, 400, type, data);

export const unauthorized = (message = "Missing or invalid credential") =>
	new MoleculerClientError(message, 401, "UNAUTHORIZED");

export const forbidden = (message: string, data?: unknown) =>
	new MoleculerClientError(message, 403, "FORBIDDEN", data);

export const notFound = (what: string, id?: string) =>
	new MoleculerClientError(`${what} not found`, 404, "NOT_FOUND", id ? { id } : undefined);

export const conflict = (message: string, data?: unknown) =>
	new MoleculerClientError(message, 409, "CONFLICT", data);

export const invalid = (message: string, errors: unknown) =>
	new MoleculerClientError(message, 422, "VALIDATION_ERROR", errors);

export const rateLimited = (retryAfterSeconds: number) =>
	new MoleculerClientError("Too many requests", 429, "RATE_LIMITED", {
		retry_after: retryAfterSeconds
	});

/** An `expected_hash` that no longer matches: nothing ran, and the caller learns what to re-approve. */
export const definitionChanged = (currentHash: string) =>
	new MoleculerClientError(
		"The tool's definition changed since the expected hash was taken",
		409,
		"DEFINITION_CHANGED",
		{ current_hash: currentHash }
	);
