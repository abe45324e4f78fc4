/** Module resolution hook: inside the conformance package, `fs` is `fs-with-glob.mjs`. */
const shim = new URL("./fs-with-glob.mjs", import.meta.url).href;

export async function resolve(specifier, context, nextResolve) {
	if (
		(specifier === "fs" || specifier === "node:fs") &&
		context.parentURL?.includes("/@modelcontextprotocol/conformance/")
	)
		return { url: shim, shortCircuit: true };
	return nextResolve(specifier, context);
}
