import { BACKENDS } from "../support/backends";
import { useKeysNode } from "../support/keys";
import { http, type TestNode } from "../support/node";

let counter = 0;
const newTenant = () => `keys-${process.pid}-${++counter}`;

describe.each(BACKENDS)("API key management on the $name store", ({ redisUrl }) => {
	const keys = useKeysNode(redisUrl);
	const { createKey } = keys;
	let node: TestNode;
	beforeAll(() => ({ node } = keys));

	const keyFor = async (body: Record<string, unknown>) =>
		(await createKey(body)).body as { key_id: string; api_key: string };

	describe("a keys:admin key bound to an agent", () => {
		it("mints keys bound to the same agent with a subset of its scopes", async () => {
			const tenant = newTenant();
			const admin = await keyFor({
				tenant_id: tenant,
				scopes: ["keys:admin", "tools:read"],
				agent_id: "bot-1"
			});
			const minted = await createKey(
				{ tenant_id: tenant, scopes: ["tools:read"], agent_id: "bot-1" },
				admin.api_key
			);
			expect(minted.status).toBe(201);
			expect(minted.body).toMatchObject({ agent_id: "bot-1", scopes: ["tools:read"] });
		});

		it.each([
			["no agent", {}],
			["another agent", { agent_id: "bot-2" }]
		])("cannot mint a key for %s", async (_case, agent) => {
			const tenant = newTenant();
			const admin = await keyFor({
				tenant_id: tenant,
				scopes: ["keys:admin", "tools:read"],
				agent_id: "bot-1"
			});
			const refused = await createKey({ tenant_id: tenant, scopes: ["tools:read"], ...agent }, admin.api_key);
			expect(refused.status).toBe(403);
			expect(refused.body).toMatchObject({ type: "FORBIDDEN", data: { agent_id: "bot-1" } });
		});

		it("cannot grant a scope it does not have", async () => {
			const tenant = newTenant();
			const admin = await keyFor({ tenant_id: tenant, scopes: ["keys:admin"], agent_id: "bot-1" });
			const refused = await createKey(
				{ tenant_id: tenant, scopes: ["tools:execute"], agent_id: "bot-1" },
				admin.api_key
			);
			expect(refused.status).toBe(403);
		});
	});

	describe("listing", () => {
		it("shows the tenant's keys, never a secret, and when each was last used", async () => {
			const tenant = newTenant();
			const used = await keyFor({ tenant_id: tenant, scopes: ["tools:read"], name: "reader" });
			const idle = await keyFor({ tenant_id: tenant, scopes: ["keys:admin"] });
			await keyFor({ tenant_id: newTenant(), scopes: ["tools:read"] });
			expect((await http(node.url, "GET", "/api/v1/tools", { token: used.api_key })).status).toBe(200);

			const listed = await http(node.url, "GET", "/api/v1/keys", { token: idle.api_key });
			expect(listed.status).toBe(200);
			const items = listed.body.items as Record<string, unknown>[];
			expect(items.map(item => item.key_id).sort()).toEqual([used.key_id, idle.key_id].sort());
			for (const item of items) {
				expect(item).not.toHaveProperty("secret_hash");
				expect(item).not.toHaveProperty("api_key");
				expect(Object.keys(item)).toEqual(
					expect.arrayContaining([
						"key_id",
						"tenant_id",
						"scopes",
						"agent_id",
						"name",
						"created_at",
						"last_used_at"
					])
				);
			}
			const usedItem = items.find(item => item.key_id === used.key_id)!;
			expect(Date.parse(usedItem.last_used_at as string)).toBeGreaterThan(Date.now() - 60000);
			// The listing key itself authenticated this request.
			expect(items.find(item => item.key_id === idle.key_id)!.last_used_at).not.toBeNull();
		});

		it("needs keys:admin", async () => {
			const tenant = newTenant();
			const reader = await keyFor({ tenant_id: tenant, scopes: ["tools:read"] });
			const refused = await http(node.url, "GET", "/api/v1/keys", { token: reader.api_key });
			expect(refused.status).toBe(403);
		});
	});
});
