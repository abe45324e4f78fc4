import { http, startNode } from "../support/node";
it("calc", async () => {
	const node = await startNode();
	const t0 = Date.now();
	const r = await http(node.url, "POST", "/api/v1/internal/execute", { tenant: "x", body: { tool_name: "calculator", parameters: { expression: "6*7" } } });
	console.log(Date.now() - t0, JSON.stringify(r.body));
	const r2 = await http(node.url, "POST", "/api/v1/internal/execute", { tenant: "x", body: { tool_name: "calculator", parameters: { expression: "6*7" } } });
	console.log(Date.now() - t0, JSON.stringify(r2.body));
	await node.stop();
});
