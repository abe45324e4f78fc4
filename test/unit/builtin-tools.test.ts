import { createHash } from "crypto";
import { BUILTIN_RELEASE, BUILTIN_TOOLS, isEarlierBuiltin } from "../../lib/builtin-tools";

const calculator = BUILTIN_TOOLS.find(tool => tool.name === "calculator")!;

describe("built-in tools", () => {
	it("raise BUILTIN_RELEASE with every change to their definitions", () => {
		// Changed the built-ins? Raise BUILTIN_RELEASE, then put both new values here.
		const digest = createHash("sha256").update(JSON.stringify(BUILTIN_TOOLS)).digest("hex").slice(0, 16);
		expect({ release: BUILTIN_RELEASE, digest }).toEqual({ release: 2, digest: "72a2dfaec72978ca" });
	});

	it("tell a built-in of an earlier release from this release's and from an operator's own tool", () => {
		const stored = (metadata: Record<string, unknown>, type = "calculator") => ({ type, metadata });
		// Releases before the marker: the "builtin" tag.
		expect(isEarlierBuiltin(stored({ tags: ["math", "builtin"] }), calculator)).toBe(true);
		expect(isEarlierBuiltin(stored({ builtin_release: BUILTIN_RELEASE - 1 }), calculator)).toBe(true);
		// This release's, or a later one's during a rolling upgrade: an operator's edits since then stay.
		expect(isEarlierBuiltin(stored({ builtin_release: BUILTIN_RELEASE }), calculator)).toBe(false);
		expect(isEarlierBuiltin(stored({ builtin_release: BUILTIN_RELEASE + 1 }), calculator)).toBe(false);
		// An operator's global tool that took the name.
		expect(isEarlierBuiltin(stored({ tags: ["builtin"] }, "external_api"), calculator)).toBe(false);
		expect(isEarlierBuiltin(stored({ tags: ["ours"] }), calculator)).toBe(false);
	});
});
