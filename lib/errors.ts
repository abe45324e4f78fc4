import { Errors } from "moleculer";

/**
 * Every error a caller can meet, built by a named factory, and the predicates that recognise them.
 *
 * Factories return Moleculer errors so they cross the transporter and reach REST unchanged. An
 * error that crossed the transporter is rebuilt from its `name`, `code`, `type` and `data` only
 * (a class of ours comes back as a plain Error), so the predicates read those fields and never use
 * `instanceof`. `type` is the stable UPPER_SNAKE string of the error body; `name` tells apart
 * errors that share a type (a name clash and a stale version are both `CONFLICT`).
 */
const { MoleculerClientError, MoleculerRetryableError } = Errors;

/** The fields an error keeps on the wire; anything thrown may lack them. */
export interface ErrorFields {
	name?: string;
	message?: string;
	code?: unknown;
	type?: unknown;
	data?: unknown;
}

const fieldsOf = (err: unknown): ErrorFields =>
	(err !== null && typeof err === "object" ? err : {}) as ErrorFields;

const named = <E extends Error>(name: string, error: E): E => {
	error.name = name;
	return error;
};

/** Names of the errors that share a `type` with others, for the predicates below. */
const NAMES = {
	NAME_TAKEN: "NameTakenError",
	STALE_VERSION: "StaleVersionError",
	DEFINITION_CHANGED: "DefinitionChangedError",
	DEPENDENCY_DOWN: "DependencyDownError",
	EXECUTOR_LOST: "ExecutorLostError",
	LACKS_SCOPE: "LacksScopeError"
} as const;

/** Seconds a client is told to wait when a dependency is down. */
export const DEPENDENCY_RETRY_AFTER_S = 5;

// 4xx: the caller's mistake.

export const badRequest = (message: string, type = "BAD_REQUEST", data?: unknown) =>
	new MoleculerClientError(message, 400, type, data);

export const unauthorized = (message = "Missing or invalid credential") =>
	new MoleculerClientError(message, 401, "UNAUTHORIZED");

export const forbidden = (message: string, data?: unknown) =>
	new MoleculerClientError(message, 403, "FORBIDDEN", data);

/** A known credential without the scope an action needs. */
export const lacksScope = (scope: string) =>
	named(NAMES.LACKS_SCOPE, forbidden(`This credential lacks the '${scope}' scope`));

export const notFound = (what: string, id?: string) =>
	new MoleculerClientError(`${what} not found`, 404, "NOT_FOUND", id ? { id } : undefined);

export const methodNotAllowed = (allowed: readonly string[]) =>
	new MoleculerClientError("Method not allowed", 405, "METHOD_NOT_ALLOWED", { allow: allowed });

/** The request's headers and body did not arrive in time (REQUEST_TIMEOUT_MS). */
export const requestTimeout = (message: string) => new MoleculerClientError(message, 408, "REQUEST_TIMEOUT");

export const conflict = (message: string, data?: unknown) =>
	new MoleculerClientError(message, 409, "CONFLICT", data);

/** Another tool of the tenant already has this name. */
export const nameTaken = (name: string) =>
	named(NAMES.NAME_TAKEN, conflict(`A tool named '${name}' already exists`, { name }));

/** A write that named the version it expected, and the tool has moved on. */
export const staleVersion = (currentVersion: number) =>
	named(
		NAMES.STALE_VERSION,
		conflict("The tool was changed since the expected version", { current_version: currentVersion })
	);

/** The caller pinned a definition (`expected_hash`) that is no longer the tool's. */
export const definitionChanged = (currentHash: string) =>
	named(
		NAMES.DEFINITION_CHANGED,
		new MoleculerClientError("The tool's definition changed since it was shown", 409, "DEFINITION_CHANGED", {
			definition_hash: currentHash
		})
	);

export const payloadTooLarge = (message: string) =>
	new MoleculerClientError(message, 413, "PAYLOAD_TOO_LARGE");

export const headersTooLarge = () =>
	new MoleculerClientError("Request header fields too large", 431, "HEADERS_TOO_LARGE");

export const unsupportedMediaType = (message: string) =>
	new MoleculerClientError(message, 415, "UNSUPPORTED_MEDIA_TYPE");

/** `problems` is `[{ field, message }]`, one entry per problem. */
export const invalid = (message: string, problems: unknown) =>
	new MoleculerClientError(message, 422, "VALIDATION_ERROR", problems);

export const rateLimited = (retryAfterSeconds: number) =>
	new MoleculerClientError("Too many requests", 429, "RATE_LIMITED", {
		retry_after: retryAfterSeconds
	});

// 5xx: not the caller's fault, worth retrying.

/** Redis, the transporter or another store this request needs cannot be reached now. */
export const dependencyDown = (dependency: string, retryAfterSeconds = DEPENDENCY_RETRY_AFTER_S) =>
	named(
		NAMES.DEPENDENCY_DOWN,
		new MoleculerRetryableError(`${dependency} is unavailable`, 503, "SERVICE_UNAVAILABLE", {
			dependency,
			retry_after: retryAfterSeconds
		})
	);

/** This node is stopping: it finishes what it took and takes nothing new. */
export const stopping = () =>
	new MoleculerRetryableError("This node is stopping; try again (another node)", 503, "SERVICE_UNAVAILABLE", {
		retry_after: 1
	});

/**
 * The node running a call was lost before it answered. Whether the tool ran is unknown, so a tool
 * that is neither idempotent nor read-only is not run again: the caller decides.
 */
export const executorLost = (retryAfterSeconds = 1) =>
	named(
		NAMES.EXECUTOR_LOST,
		new MoleculerRetryableError(
			"The executor node running the call was lost; the tool may or may not have run",
			503,
			"EXECUTOR_LOST",
			{ retry_after: retryAfterSeconds }
		)
	);

// Predicates.

const hasName = (err: unknown, name: string) => fieldsOf(err).name === name;

export const isNameTaken = (err: unknown) => hasName(err, NAMES.NAME_TAKEN);
export const isStaleVersion = (err: unknown) => hasName(err, NAMES.STALE_VERSION);
export const isDefinitionChanged = (err: unknown) => hasName(err, NAMES.DEFINITION_CHANGED);
export const isDependencyDown = (err: unknown) => hasName(err, NAMES.DEPENDENCY_DOWN);

/** Any 404: the thing asked for does not exist for this caller. */
export const isNotFound = (err: unknown) => fieldsOf(err).code === 404;

/** Any 409, including the named conflicts above. */
export const isConflict = (err: unknown) => fieldsOf(err).code === 409;

/** No node offers the action called (Moleculer's own errors). */
export const isNoNode = (err: unknown) => {
	const { type } = fieldsOf(err);
	return type === "SERVICE_NOT_FOUND" || type === "SERVICE_NOT_AVAILABLE";
};

/** No node offers the action called, or a dependency is down: a later try may pass. */
export const isUnavailable = (err: unknown) => isNoNode(err) || isDependencyDown(err);

/** The node a call went to disconnected (or was found dead) before answering (Moleculer's own error). */
export const isNodeLost = (err: unknown) => hasName(err, "RequestRejectedError");

/** A call between nodes that got no answer in time. */
export const isRequestTimeout = (err: unknown) => hasName(err, "RequestTimeoutError");

/** The caller's mistake (4xx): retrying the same request cannot succeed. */
export const isClientError = (err: unknown) => {
	const { code } = fieldsOf(err);
	return typeof code === "number" && code >= 400 && code < 500;
};
