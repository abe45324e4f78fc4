/** Tenant of global tools: visible to every tenant, writable only when acting for `*`. */
export const GLOBAL_TENANT = "*";

/** A tenant id as it may appear in `X-Tenant-ID`, `ctx.meta` and a key: `*` or a short name. */
export const TENANT_ID_PATTERN = /^(\*|[A-Za-z0-9][A-Za-z0-9_.-]{0,127})$/;

/** In a tool's `permissions.agents`: every agent of the tenant may use it. */
export const ANY_AGENT = "*";
