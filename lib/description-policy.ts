import type { ValidationReport } from "../types/wire";
import { invalid } from "./errors";

/** What the registry does with a definition whose descriptions the guard flagged. */
export type DescriptionPolicy = "warn" | "refuse";

export interface DescriptionPolicies {
	/** Policy of every tenant not listed in `tenants`. */
	default: DescriptionPolicy;
	tenants: Record<string, DescriptionPolicy>;
}

const isPolicy = (value: string): value is DescriptionPolicy => value === "warn" || value === "refuse";

/**
 * Reads `DESCRIPTION_POLICY` (`warn` | `refuse`) and `DESCRIPTION_POLICY_TENANTS`
 * (`tenant=refuse,other=warn`). Anything else is a configuration mistake and stops the start.
 */
export function parseDescriptionPolicies(defaultValue = "warn", perTenant = ""): DescriptionPolicies {
	if (!isPolicy(defaultValue))
		throw new Error(`DESCRIPTION_POLICY must be warn or refuse, not '${defaultValue}'`);
	const tenants: Record<string, DescriptionPolicy> = {};
	for (const entry of perTenant
		.split(",")
		.map(item => item.trim())
		.filter(Boolean)) {
		const [tenant, policy] = entry.split("=").map(part => part.trim());
		if (!tenant || !policy || !isPolicy(policy))
			throw new Error(`DESCRIPTION_POLICY_TENANTS entry '${entry}' must be tenant=warn or tenant=refuse`);
		tenants[tenant] = policy;
	}
	return { default: defaultValue, tenants };
}

export const policyOf = (policies: DescriptionPolicies, tenantId: string): DescriptionPolicy =>
	policies.tenants[tenantId] ?? policies.default;

/** Under `refuse`, a definition with description findings is refused with them as its errors. */
export function enforceDescriptionPolicy(policy: DescriptionPolicy, report: ValidationReport): void {
	const findings = report.warnings ?? [];
	if (policy === "refuse" && findings.length)
		throw invalid(
			"Tool descriptions are refused by the tenant's policy",
			findings.map(({ field, rule, message }) => ({ field, message: `${message} (${rule})` }))
		);
}
