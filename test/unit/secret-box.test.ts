import { spawn } from "child_process";
import { randomBytes } from "crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from "fs";
import { tmpdir } from "os";
import path from "path";
import { DEV_KEY_FILE, loadSecretBox, parseSecretsKey, SecretBox } from "../../lib/secret-box";

const config = {
	url: "https://api.example.com",
	headers: { "X-Api-Key": "header-secret", Accept: "application/json" },
	query: { token: "query-secret", units: "metric" }
};

describe("secret box", () => {
	const key = randomBytes(32);

	it("seals every secret of a config and opens it back", () => {
		const box = new SecretBox(key);
		const sealed = box.sealConfig(config);
		const text = JSON.stringify(sealed);
		for (const secret of ["header-secret", "query-secret", "application/json"])
			expect(text).not.toContain(secret);
		expect(sealed.url).toBe(config.url);
		expect((sealed.query as Record<string, string>).units).toBe("metric");
		expect(box.openConfig(sealed)).toEqual(config);
	});

	it("uses a fresh IV every time and refuses a tampered value", () => {
		const box = new SecretBox(key);
		const [a, b] = [box.seal("x"), box.seal("x")];
		expect(a).not.toBe(b);
		// Flip one bit of the ciphertext itself: editing base64 characters can land on padding bits.
		const prefix = a.slice(0, a.lastIndexOf(":") + 1);
		const raw = Buffer.from(a.slice(prefix.length), "base64url");
		raw[raw.length - 1] ^= 1;
		const tampered = prefix + raw.toString("base64url");
		expect(() => box.open(tampered)).toThrow();
	});

	it("seals a value that only looks sealed, so a tenant cannot plant one", () => {
		const box = new SecretBox(key);
		const planted = { headers: { Authorization: box.seal("other") } };
		expect(box.openConfig(box.sealConfig(planted))).toEqual(planted);
	});

	it("reads values of a previous key and reseals them under the current one", () => {
		const old = new SecretBox(key);
		const stored = old.sealConfig(config);
		const newKey = randomBytes(32);
		const rotated = new SecretBox(newKey, [key]);
		expect(rotated.openConfig(stored)).toEqual(config);
		const resealed = rotated.resealConfig(stored);
		// Already under the current key: kept as it is.
		expect(rotated.resealConfig(resealed)).toEqual(resealed);
		expect(() => old.openConfig(resealed)).toThrow(/not configured/);
		expect(new SecretBox(newKey).openConfig(resealed)).toEqual(config);
	});

	it("reads a key as hex or base64 and refuses any other length", () => {
		expect(parseSecretsKey(key.toString("hex"))).toEqual(key);
		expect(parseSecretsKey(key.toString("base64"))).toEqual(key);
		expect(() => parseSecretsKey("short")).toThrow(/32 bytes/);
	});

	describe("loading the key", () => {
		const cwd = process.cwd();
		afterEach(() => process.chdir(cwd));

		it("refuses production without a key", () => {
			process.chdir(mkdtempSync(path.join(tmpdir(), "box-")));
			expect(() => loadSecretBox({ previous: [], production: true, warn: () => undefined })).toThrow(
				/SECRETS_KEY/
			);
			expect(existsSync(DEV_KEY_FILE)).toBe(false);
		});

		it("makes up a development key once, keeps it in a private file and warns", () => {
			process.chdir(mkdtempSync(path.join(tmpdir(), "box-")));
			const warnings: string[] = [];
			const first = loadSecretBox({ previous: [], production: false, warn: w => warnings.push(w) });
			expect(statSync(DEV_KEY_FILE).mode & 0o777).toBe(0o600);
			const sealed = first.seal("kept");
			const second = loadSecretBox({ previous: [], production: false, warn: w => warnings.push(w) });
			expect(second.open(sealed)).toBe("kept");
			expect(warnings).toHaveLength(2);
			expect(warnings[0]).toMatch(/made up/);
			expect(readFileSync(DEV_KEY_FILE, "utf8").trim()).toHaveLength(44);
		});

		it("gives nodes of one directory started at the same moment one development key", async () => {
			const dir = mkdtempSync(path.join(tmpdir(), "box-"));
			// Each node loads the module, says so, and makes its box once told to go: all at one moment.
			const script = `
				const { loadSecretBox } = require(${JSON.stringify(path.resolve(__dirname, "../../lib/secret-box"))});
				process.stdout.write("ready\\n");
				process.stdin.once("data", () => {
					let warning = "";
					const box = loadSecretBox({ previous: [], production: false, warn: w => (warning = w) });
					process.stdout.write(JSON.stringify({ keyId: box.keyId, madeUp: /made up/.test(warning) }));
					process.exit(0);
				});`;
			const nodes = Array.from({ length: 6 }, () => {
				const child = spawn(
					process.execPath,
					["-r", require.resolve("ts-node/register/transpile-only"), "-e", script],
					{
						cwd: dir,
						env: { ...process.env, TS_NODE_PROJECT: path.resolve(__dirname, "../../tsconfig.json") }
					}
				);
				let output = "";
				const ready = new Promise<void>(resolve =>
					child.stdout.on("data", (chunk: Buffer) => {
						output += chunk.toString();
						if (output.startsWith("ready\n")) resolve();
					})
				);
				const answer = new Promise<{ keyId: string; madeUp: boolean }>((resolve, reject) =>
					child.once("exit", code =>
						code === 0 ? resolve(JSON.parse(output.slice("ready\n".length))) : reject(new Error(output))
					)
				);
				return { child, ready, answer };
			});
			await Promise.all(nodes.map(node => node.ready));
			for (const { child } of nodes) child.stdin.write("go\n");
			const answers = await Promise.all(nodes.map(node => node.answer));
			expect(new Set(answers.map(a => a.keyId)).size).toBe(1);
			expect(answers.filter(a => a.madeUp)).toHaveLength(1);
			expect(readdirSync(dir)).toEqual([DEV_KEY_FILE]);
			expect(statSync(path.join(dir, DEV_KEY_FILE)).mode & 0o777).toBe(0o600);
		}, 30_000);

		it("takes SECRETS_KEY over the key file", () => {
			const box = loadSecretBox({
				key: key.toString("hex"),
				previous: [],
				production: true,
				warn: () => undefined
			});
			expect(new SecretBox(key).open(box.seal("v"))).toBe("v");
		});
	});
});
