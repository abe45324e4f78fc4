import { createCipheriv, createDecipheriv, createHash, randomBytes } from "crypto";
import { existsSync, linkSync, readFileSync, rmSync, writeFileSync } from "fs";
import type { JsonObject } from "../types/wire";
import { isSecret } from "./secrets";

/** `enc:v1:<key id>:<base64url of iv ‖ tag ‖ ciphertext>`: a sealed secret as stored. */
const SEALED = /^enc:v1:([0-9a-f]{8}):([A-Za-z0-9_-]+)$/;

const keyId = (key: Buffer) => createHash("sha256").update(key).digest("hex").slice(0, 8);

/** A 32-byte key from 64 hex digits or base64 (standard or url-safe); throws what it expects. */
export function parseSecretsKey(text: string): Buffer {
	const trimmed = text.trim();
	const key = /^[0-9a-fA-F]{64}$/.test(trimmed)
		? Buffer.from(trimmed, "hex")
		: Buffer.from(trimmed, "base64");
	if (key.length !== 32) throw new Error("must be 32 bytes, as 64 hex digits or base64");
	return key;
}

/**
 * AES-256-GCM over the secret strings of a config (header values and secret-looking keys, the
 * positions `maskSecrets` hides). Sealed values name the key that sealed them, so several keys can
 * be read at once while a rotation re-encrypts under the current one.
 */
export class SecretBox {
	private readonly current: { id: string; key: Buffer };
	private readonly keys = new Map<string, Buffer>();

	constructor(current: Buffer, previous: Buffer[] = []) {
		this.current = { id: keyId(current), key: current };
		for (const key of [current, ...previous]) this.keys.set(keyId(key), key);
	}

	/** Whether earlier keys are configured (SECRETS_KEY_PREVIOUS): a rotation is under way. */
	get hasPreviousKeys(): boolean {
		return this.keys.size > 1;
	}

	/** The id of the key new secrets are sealed under (the first 8 hex digits of its SHA-256). */
	get keyId(): string {
		return this.current.id;
	}

	seal(plain: string): string {
		const iv = randomBytes(12);
		const cipher = createCipheriv("aes-256-gcm", this.current.key, iv);
		const body = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()]);
		return `enc:v1:${this.current.id}:${Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64url")}`;
	}

	/** The plain text of a sealed value; a value that is not sealed is returned as it is. */
	open(value: string): string {
		const match = SEALED.exec(value);
		if (!match) return value;
		const key = this.keys.get(match[1]);
		if (!key) throw new Error(`A secret is sealed under key ${match[1]}, which is not configured`);
		const raw = Buffer.from(match[2], "base64url");
		const decipher = createDecipheriv("aes-256-gcm", key, raw.subarray(0, 12));
		decipher.setAuthTag(raw.subarray(12, 28));
		return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString("utf8");
	}

	/** Whether `value` is sealed under a key other than the current one (a rotation must redo it). */
	isStale(value: string): boolean {
		const match = SEALED.exec(value);
		return match !== null && match[1] !== this.current.id;
	}

	/**
	 * `config` (plain, as callers see it) with every secret string sealed. Always sealed, even a value
	 * that looks sealed: a tenant cannot plant one that would be "opened" on read.
	 */
	sealConfig(config: JsonObject): JsonObject {
		return mapSecrets(config, value => this.seal(value));
	}

	/**
	 * A stored `config` with every secret under the current key: sealed under an earlier key, sealed
	 * again; stored in clear (before encryption was enabled), sealed; already current, kept.
	 */
	resealConfig(stored: JsonObject): JsonObject {
		return mapSecrets(stored, value =>
			!SEALED.test(value) ? this.seal(value) : this.isStale(value) ? this.seal(this.open(value)) : value
		);
	}

	/** `config` with every sealed secret opened. */
	openConfig(config: JsonObject): JsonObject {
		return mapSecrets(config, value => this.open(value));
	}
}

function mapSecrets(config: JsonObject, map: (value: string) => string, parentKey?: string): JsonObject {
	const out: JsonObject = {};
	for (const [key, value] of Object.entries(config)) {
		if (typeof value === "string" && isSecret(key, parentKey)) out[key] = map(value);
		else if (value && typeof value === "object" && !Array.isArray(value))
			out[key] = mapSecrets(value as JsonObject, map, key);
		else out[key] = value;
	}
	return out;
}

export interface SecretsKeyOptions {
	/** SECRETS_KEY. */
	key?: string;
	/** SECRETS_KEY_FILE: a file holding the key; where a development key is kept when it is absent. */
	keyFile?: string;
	/** SECRETS_KEY_PREVIOUS: keys still readable while a rotation re-encrypts. */
	previous: string[];
	production: boolean;
	warn(message: string): void;
}

/** Where a development key is kept when neither SECRETS_KEY nor SECRETS_KEY_FILE is set. */
export const DEV_KEY_FILE = ".tool-registry-secrets.key";

/**
 * The box of this node: SECRETS_KEY, else the key in SECRETS_KEY_FILE. Without either, production
 * refuses to start; development makes up a key and keeps it in a local file (with a warning), so
 * secrets stored by one run open in the next.
 */
export function loadSecretBox(options: SecretsKeyOptions): SecretBox {
	const previous = options.previous.map(parseSecretsKey);
	const fromFile = (file: string) => new SecretBox(parseSecretsKey(readFileSync(file, "utf8")), previous);
	if (options.key) return new SecretBox(parseSecretsKey(options.key), previous);
	if (options.keyFile) {
		if (!existsSync(options.keyFile)) throw new Error(`SECRETS_KEY_FILE ${options.keyFile} does not exist`);
		return fromFile(options.keyFile);
	}
	if (options.production)
		throw new Error(
			"SECRETS_KEY or SECRETS_KEY_FILE is required with NODE_ENV=production (tool secrets are encrypted with it)"
		);
	options.warn(
		createDevKeyFile()
			? `SECRETS_KEY is not set: tool secrets are encrypted with a development key made up in ${DEV_KEY_FILE}; set SECRETS_KEY in production`
			: `SECRETS_KEY is not set: tool secrets are encrypted with the development key in ${DEV_KEY_FILE}`
	);
	return fromFile(DEV_KEY_FILE);
}

/** Codes of a file system without hard links (FAT, some network and FUSE mounts). */
const NO_HARD_LINKS = new Set(["EPERM", "ENOTSUP", "EOPNOTSUPP", "ENOSYS"]);

/**
 * Makes up the development key unless the file exists; true when this call made it. Nodes started
 * together in one directory must all end up with the same key, and none may read a half-written one:
 * the key is written whole to a file of this process's own, then linked into place, which only one
 * process can do. Without hard links it is created exclusively instead (a reader may then, rarely,
 * find it still empty and fail to start).
 */
function createDevKeyFile(): boolean {
	if (existsSync(DEV_KEY_FILE)) return false;
	const key = `${randomBytes(32).toString("base64")}\n`;
	const draft = `${DEV_KEY_FILE}.${process.pid}.${randomBytes(4).toString("hex")}`;
	const made = (create: () => void) => {
		try {
			create();
			return true;
		} catch (err) {
			if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
			throw err;
		}
	};
	try {
		writeFileSync(draft, key, { mode: 0o600 });
		return made(() => linkSync(draft, DEV_KEY_FILE));
	} catch (err) {
		if (!NO_HARD_LINKS.has((err as NodeJS.ErrnoException).code ?? "")) throw err;
		return made(() => writeFileSync(DEV_KEY_FILE, key, { mode: 0o600, flag: "wx" }));
	} finally {
		rmSync(draft, { force: true });
	}
}

/** The key settings of a service that seals secrets (lib/config.ts names); never published to other nodes. */
export interface SecretsKeySettings {
	secretsKey?: string;
	secretsKeyFile?: string;
	secretsKeyPrevious: string[];
	nodeEnv?: string;
}

export const secretsKeySettings = ({
	secretsKey,
	secretsKeyFile,
	secretsKeyPrevious,
	nodeEnv
}: SecretsKeySettings): SecretsKeySettings => ({ secretsKey, secretsKeyFile, secretsKeyPrevious, nodeEnv });

/** The box of a service's key settings. */
export const secretBoxOf = (settings: SecretsKeySettings, warn: (message: string) => void): SecretBox =>
	loadSecretBox({
		key: settings.secretsKey,
		keyFile: settings.secretsKeyFile,
		previous: settings.secretsKeyPrevious,
		production: settings.nodeEnv === "production",
		warn
	});
