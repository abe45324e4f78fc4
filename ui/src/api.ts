/** The signed-in identity: kept in sessionStorage only (gone with the tab), never in the URL. */
export interface Session {
	credential: string;
	/** Required with the service token; optional with an API key (which knows its tenant). */
	tenant: string | null;
	/** False for a key without `tools:read`: it may manage keys, but gets no catalog nor live feed. */
	reads?: boolean;
}

const SESSION_KEY = "tool-registry.console.session";

export function loadSession(): Session | null {
	try {
		const stored = JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? "null") as Session | null;
		return stored && typeof stored.credential === "string" ? stored : null;
	} catch {
		return null;
	}
}

export const saveSession = (session: Session) => sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
export const clearSession = () => sessionStorage.removeItem(SESSION_KEY);

/** An error answer of the API, carrying its own message and field list (`data`). */
export class ApiError extends Error {
	constructor(
		readonly status: number,
		readonly type: string,
		message: string,
		readonly data?: unknown,
		/** The API's error name, e.g. `LacksScopeError`. */
		readonly errorName?: string
	) {
		super(message);
	}

	/** Per-field problems of a validation error, as the API lists them. */
	get fields(): { field: string; message: string }[] {
		return Array.isArray(this.data)
			? this.data.filter(
					(entry): entry is { field: string; message: string } =>
						typeof entry === "object" && entry !== null && "message" in entry
				)
			: [];
	}
}

/**
 * Calls `/api/v1`: the credential goes in the Authorization header (no cookies, so no CSRF), and
 * an error answer becomes an ApiError with the API's own message.
 */
export async function api<T = unknown>(
	session: Session,
	method: string,
	path: string,
	body?: unknown
): Promise<T> {
	const headers: Record<string, string> = { Authorization: `Bearer ${session.credential}` };
	if (session.tenant) headers["X-Tenant-ID"] = session.tenant;
	if (body !== undefined) headers["Content-Type"] = "application/json";
	let res: Response;
	try {
		res = await fetch(`/api/v1${path}`, {
			method,
			headers,
			body: body === undefined ? undefined : JSON.stringify(body),
			credentials: "omit",
			cache: "no-store"
		});
	} catch {
		throw new ApiError(0, "NETWORK_ERROR", "The server did not answer. Check that it is running.");
	}
	const text = await res.text();
	let json: unknown = null;
	try {
		json = text ? JSON.parse(text) : null;
	} catch {
		json = null;
	}
	if (!res.ok) {
		const error = (json ?? {}) as { name?: string; type?: string; message?: string; data?: unknown };
		throw new ApiError(
			res.status,
			error.type ?? `HTTP_${res.status}`,
			error.message ?? `${res.status} ${res.statusText}`,
			error.data,
			error.name
		);
	}
	return json as T;
}

/** The query string of the defined, non-empty values. */
export function query(params: Record<string, string | number | undefined | null>): string {
	const search = new URLSearchParams();
	for (const [name, value] of Object.entries(params))
		if (value !== undefined && value !== null && value !== "") search.set(name, String(value));
	const text = search.toString();
	return text ? `?${text}` : "";
}

/**
 * Which optional APIs this server has, read from its own OpenAPI document, so a view whose API is
 * missing says so instead of failing.
 */
export interface Capabilities {
	keysList: boolean;
	versions: boolean;
	sources: boolean;
	stats: boolean;
	toolStatus: boolean;
}

export async function loadCapabilities(): Promise<Capabilities> {
	try {
		const res = await fetch("/openapi.json", { credentials: "omit" });
		const paths = ((await res.json()) as { paths?: Record<string, Record<string, unknown>> }).paths ?? {};
		const has = (path: string, method: string) => Boolean(paths[`/api/v1${path}`]?.[method]);
		return {
			keysList: has("/keys", "get"),
			versions: has("/tools/{id}/versions", "get"),
			sources: has("/sources", "get"),
			stats: has("/tools/{id}/stats", "get"),
			toolStatus: has("/tools/{id}/status", "put")
		};
	} catch {
		return { keysList: false, versions: false, sources: false, stats: false, toolStatus: false };
	}
}
