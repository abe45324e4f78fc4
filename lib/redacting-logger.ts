import { inspect } from "util";
import { Loggers } from "moleculer";

type LogHandler = NonNullable<ReturnType<InstanceType<typeof Loggers.Console>["getLogHandler"]>>;
type Bindings = Parameters<InstanceType<typeof Loggers.Console>["getLogHandler"]>[0];

const REDACTED = "[redacted]";
const LEVELS: readonly string[] = Loggers.Base.LEVELS;

/** Credentials recognisable by their shape, wherever a log line carries them. */
const SHAPES: [RegExp, string][] = [
	// API keys (`trk_<key id>.<secret>`): the key id stays, for tracing which key it was.
	[/\b(trk_[A-Za-z0-9-]+)\.[A-Za-z0-9_-]+/g, `$1.${REDACTED}`],
	[/\b(Bearer|Basic)\s+[^\s'",]+/gi, `$1 ${REDACTED}`],
	// Secrets in a URL's query, e.g. `/ws?token=...` (browsers cannot send headers on a WebSocket).
	[/([?&](?:token|access_token|api[_-]?key|key|secret|password|signature)=)[^&\s'"#]+/gi, `$1${REDACTED}`]
];

/** `text` with every known secret and every credential-shaped substring replaced. */
export function redactSecrets(text: string, secrets: readonly string[]): string {
	let redacted = text;
	for (const secret of secrets) redacted = redacted.split(secret).join(REDACTED);
	for (const [shape, replacement] of SHAPES) redacted = redacted.replace(shape, replacement);
	return redacted;
}

export interface RedactingLoggerOptions {
	/** Values never written as they are (the service token, the callback secret). */
	secrets?: string[];
	[option: string]: unknown;
}

/**
 * Moleculer's console logger with secrets taken out of every line: the operator's own secrets by
 * value, API keys, bearer credentials and `token=` query parameters by shape. Whatever a service or
 * library logs (a request URL, an error with its message and stack) goes through here.
 */
export class RedactingConsoleLogger extends Loggers.Console {
	private readonly secrets: string[];

	constructor(options: RedactingLoggerOptions = {}) {
		const { secrets = [], ...consoleOptions } = options;
		super(consoleOptions);
		// Short values would redact ordinary words; the service token has at least 16 characters.
		this.secrets = secrets.filter(secret => secret.length >= 8);
	}

	override getLogHandler(bindings: Bindings): LogHandler | null {
		const handler = super.getLogHandler(bindings);
		if (!handler) return handler;
		// Lines below the level are dropped before redaction: rendering every debug line's arguments
		// (util.inspect of a context) cost ~20 µs per HTTP request at LOG_LEVEL=info.
		const levelIdx = LEVELS.indexOf(this.getLogLevel(bindings.mod) as string);
		return (type, args) => {
			if (LEVELS.indexOf(type) > levelIdx) return;
			handler(
				type,
				args.map(arg => this.redact(arg))
			);
		};
	}

	/** A string is redacted; an object or error is replaced by its redacted rendering only when it held a secret. */
	private redact(arg: unknown): unknown {
		if (typeof arg === "string") return redactSecrets(arg, this.secrets);
		if (arg === null || typeof arg !== "object") return arg;
		const shown = inspect(arg, { depth: 4 });
		const redacted = redactSecrets(shown, this.secrets);
		return redacted === shown ? arg : redacted;
	}
}
