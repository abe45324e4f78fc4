import { spawn, type ChildProcess } from "child_process";
import { readFileSync } from "fs";
import { createServer } from "http";
import type { AddressInfo } from "net";
import path from "path";

const ROOT = path.resolve(__dirname, "../..");

/** The fenced ```bash blocks of a Markdown file, in order. */
export function bashBlocks(file: string): string[] {
	const text = readFileSync(path.join(ROOT, file), "utf8");
	return [...text.matchAll(/^```bash\n([\s\S]*?)^```$/gm)].map(match => match[1]);
}

export interface Command {
	/** The shell text, continuation lines and multi-line quotes included. */
	text: string;
	/** What the README says it answers: the `# …` comment on its line or on the lines after it. */
	expected: string;
}

/**
 * Splits a block into commands the way a shell reads them: a command goes on while a quote or a
 * `$(` is open or a line ends with `\`. Comments after a command are its expected answer.
 */
export function commandsOf(block: string): Command[] {
	const commands: Command[] = [];
	let text = "";
	let single = false;
	let double = false;
	let depth = 0;
	for (const line of block.split("\n")) {
		if (!text && /^\s*#/.test(line)) {
			const previous = commands[commands.length - 1];
			if (previous) previous.expected += line.replace(/^\s*#\s?/, "");
			continue;
		}
		if (!text && !line.trim()) continue;
		let comment = "";
		let end = line.length;
		for (let i = 0; i < line.length; i++) {
			const c = line[i];
			if (single) single = c !== "'";
			else if (c === "'" && !double) single = true;
			else if (c === '"') double = !double;
			else if (c === "(" && !double) depth++;
			else if (c === ")" && !double) depth--;
			else if (c === "#" && !double && /\s/.test(line[i - 1] ?? " ")) {
				comment = line.slice(i + 1).trim();
				end = i;
				break;
			}
		}
		text += line.slice(0, end).trimEnd();
		if (single || double || depth > 0 || text.endsWith("\\")) {
			text += "\n";
			continue;
		}
		commands.push({ text, expected: comment });
		text = "";
	}
	return commands;
}

/**
 * The `"key":value` pairs an expected answer names, values other than `"…"`: each must appear in the
 * actual answer (compact JSON, as the service writes it).
 */
export function expectedPairs(expected: string): string[] {
	return [...expected.matchAll(/"[a-z_]+":("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?|true|false|null)/gi)]
		.map(match => match[0])
		.filter(pair => !pair.endsWith(':"…"'));
}

/** One interactive bash, as a reader's terminal: variables and background jobs persist between commands. */
export class Shell {
	private readonly child: ChildProcess;
	private output = "";

	constructor(env: NodeJS.ProcessEnv) {
		// Its own process group, so the jobs it starts in the background end with it.
		this.child = spawn("bash", ["--noprofile", "--norc"], {
			cwd: ROOT,
			env,
			detached: true,
			stdio: ["pipe", "pipe", "pipe"]
		});
		this.child.stdout!.on("data", (chunk: Buffer) => (this.output += chunk.toString()));
		this.child.stderr!.on("data", (chunk: Buffer) => (this.output += chunk.toString()));
	}

	/** Runs one command; resolves its output and exit status. */
	async run(command: string, timeoutMs = 60000): Promise<{ output: string; status: number }> {
		const marker = `__done_${Math.random().toString(36).slice(2)}__`;
		this.output = "";
		this.child.stdin!.write(`${command}\nprintf '\\n${marker}%s\\n' "$?"\n`);
		const deadline = Date.now() + timeoutMs;
		for (;;) {
			const match = new RegExp(`\\n${marker}(\\d+)\\n`).exec(this.output);
			if (match) return { output: this.output.slice(0, match.index).trim(), status: Number(match[1]) };
			if (Date.now() > deadline)
				throw new Error(`no end of \`${command}\` after ${timeoutMs} ms:\n${this.output}`);
			await new Promise(resolve => setTimeout(resolve, 20));
		}
	}

	/** Ends the shell and everything it started. */
	async close(): Promise<void> {
		const exited = new Promise(resolve => this.child.once("exit", resolve));
		try {
			process.kill(-this.child.pid!, "SIGTERM");
		} catch {
			// Already gone.
		}
		const timer = setTimeout(() => {
			try {
				process.kill(-this.child.pid!, "SIGKILL");
			} catch {
				// Already gone.
			}
		}, 10000);
		await exited;
		clearTimeout(timer);
	}
}

export async function freePort(): Promise<number> {
	const server = createServer();
	await new Promise<void>(resolve => server.listen(0, "127.0.0.1", resolve));
	const { port } = server.address() as AddressInfo;
	await new Promise(resolve => server.close(resolve));
	return port;
}

const delay = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

/**
 * Runs a command and checks its answer. A reader waits and tries again while the service is
 * still settling (a tool being probed, a task queued, a node joining): reads, answers of a node
 * not yet up (nothing, or 503) are tried again until the README's answer shows or time is up.
 */
export async function runChecked(shell: Shell, command: Command, rewrite: (text: string) => string) {
	const assignment = /^([A-Z_]+)=\$\(/.exec(command.text)?.[1];
	const text = rewrite(command.text) + (assignment ? `; printf '%s' "$${assignment}"` : "");
	const pairs = expectedPairs(command.expected);
	const rereadable = !/\s-X\s/.test(command.text) || /\bexecute\b/.test(command.text);
	const deadline = Date.now() + 60000;
	for (;;) {
		const { output, status } = await shell.run(text);
		const notUp = output === "" || /"code":503\b/.test(output);
		const missing = pairs.filter(pair => !output.includes(pair));
		const failed =
			status !== 0 ||
			/"code":[45]\d\d\b/.test(output) ||
			missing.length > 0 ||
			(assignment !== undefined && (output === "" || output === "undefined"));
		if (!failed) return output;
		if (Date.now() > deadline || !(notUp || (rereadable && missing.length > 0)))
			throw new Error(
				`README command failed:\n${command.text}\nexpected ${JSON.stringify(pairs)}\nexit ${status}, answered:\n${output}`
			);
		await delay(200);
	}
}
