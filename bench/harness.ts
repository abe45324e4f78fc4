import { fork, spawn } from "child_process";
import fs from "fs";
import os from "os";
import path from "path";
import autocannon from "autocannon";
import type { ServiceBroker, ServiceSchema } from "moleculer";
import ApiGateway from "moleculer-web";
import type { AddressInfo } from "net";

/** One line of a results table; `baseline_value`/`ratio` are null when a metric has no baseline. */
export interface Result {
	scenario: string;
	metric: string;
	value: number;
	unit: string;
	baseline: string;
	baseline_value: number | null;
	ratio: number | null;
	notes: string;
}

export interface Machine {
	cpu: string;
	cores: number;
	memory_gb: number;
	node: string;
	os: string;
}

export interface ResultFile {
	scenario: string;
	date: string;
	/** 1-minute load average when the scenario ended: other work on the machine shows here. */
	load?: number;
	machine: Machine;
	rows: Result[];
}

export interface LoadStats {
	rps: number;
	p50: number;
	p99: number;
	errors: number;
	non2xx: number;
	/** Mean response size, to tell a slower server from a chattier one. */
	bytesPerReq: number;
	/** CPU the server used while measured; well under 1 core means it was starved or waiting. */
	serverCores: number;
}

export interface LoadOptions {
	title: string;
	server: Server;
	/** Appended to the server's URL. */
	path: string;
	method?: "GET" | "POST";
	headers?: Record<string, string>;
	/** Set for requests that must differ from one another (e.g. unique names). */
	setupRequest?: (request: autocannon.Request) => autocannon.Request;
}

/** What a server factory run by `serveInChild` resolves to. */
export interface Served {
	url: string;
	stop(): Promise<void>;
}

/** A server in a child process, so that it does not share an event loop with the load generator. */
export interface Server extends Served {
	/** User + system CPU seconds the child has used so far. */
	cpuSeconds(): Promise<number>;
}

export const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 10);
const WARMUP_S = Math.min(3, Math.max(1, Math.round(DURATION_S / 5)));
export const CONNECTIONS = 50;
export const RESULTS_DIR = path.join(__dirname, "results");

export function progress(message: string): void {
	process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

export function machine(): Machine {
	return {
		cpu: os.cpus()[0]?.model.trim() ?? "unknown",
		cores: os.cpus().length,
		memory_gb: Math.round(os.totalmem() / 2 ** 30),
		node: process.version,
		os: `${os.type()} ${os.release()} ${os.arch()}`
	};
}

function fire(
	options: LoadOptions,
	seconds: number,
	onTick?: (second: number) => void
): Promise<autocannon.Result> {
	const { method = "GET", setupRequest } = options;
	// An explicit `setupRequest: undefined` would replace autocannon's default and throw.
	const request: autocannon.Request = setupRequest ? { method, setupRequest } : { method };
	return new Promise((resolve, reject) => {
		const instance = autocannon(
			{
				url: options.server.url + options.path,
				headers: options.headers,
				connections: CONNECTIONS,
				pipelining: 1,
				duration: seconds,
				requests: [request]
			},
			(err, result) => (err ? reject(err) : resolve(result))
		);
		let second = 0;
		if (onTick) instance.on("tick", () => onTick(++second));
	});
}

/** Warms the server up (JIT, pools), then measures `DURATION_S` seconds at `CONNECTIONS` connections. */
export async function load(options: LoadOptions): Promise<LoadStats> {
	progress(`${options.title}: warm-up ${WARMUP_S} s`);
	await fire(options, WARMUP_S);
	progress(`${options.title}: measuring ${DURATION_S} s`);
	const cpuBefore = await options.server.cpuSeconds();
	const result = await fire(options, DURATION_S, second => {
		if (second % 5 === 0 && second < DURATION_S) progress(`${options.title}: ${second}/${DURATION_S} s`);
	});
	const serverCores = (await options.server.cpuSeconds()) - cpuBefore;
	const stats: LoadStats = {
		rps: Math.round(result.requests.mean),
		p50: result.latency.p50,
		p99: result.latency.p99,
		errors: result.errors,
		non2xx: result.non2xx,
		bytesPerReq: result.requests.mean ? Math.round(result.throughput.mean / result.requests.mean) : 0,
		serverCores: Math.round((serverCores / result.duration) * 100) / 100
	};
	progress(
		`${options.title}: ${stats.rps} req/s, p50 ${stats.p50} ms, p99 ${stats.p99} ms, ` +
			`server ${stats.serverCores} cores` +
			(stats.errors || stats.non2xx ? `, ${stats.errors} errors, ${stats.non2xx} non-2xx` : "")
	);
	return stats;
}

/** Latency and failure summary for a row's notes. */
export function describe(label: string, stats: LoadStats): string {
	const failures = stats.errors || stats.non2xx ? `, ${stats.errors} errors/${stats.non2xx} non-2xx` : "";
	return (
		`${label} p50/p99 ${stats.p50}/${stats.p99} ms, ${stats.bytesPerReq} B/resp, ` +
		`server ${stats.serverCores} cores = ${cpuPerRequest(stats)} µs CPU/req${failures}`
	);
}

/** Server CPU (all threads) per answered request, in µs. */
export function cpuPerRequest(stats: LoadStats): number {
	return stats.rps ? Math.round((stats.serverCores / stats.rps) * 1e6) : 0;
}

export function ratio(ours: number, baseline: number): number | null {
	return baseline ? Math.round((ours / baseline) * 100) / 100 : null;
}

/**
 * Starts `factory` of `file` in a child process; it must resolve to a `Served`.
 * The child only ever serves, the parent only ever loads: each gets one of the cores.
 */
export async function serveInChild(file: string, factory: string): Promise<Server> {
	const child = fork(__filename, [file, factory], {
		execArgv: ["-r", require.resolve("ts-node/register/transpile-only")],
		stdio: ["ignore", "inherit", "inherit", "ipc"]
	});
	const exited = new Promise<number | null>(resolve => child.once("exit", code => resolve(code)));
	// Requests are sequential, so the next message is always the answer to the last request.
	const ask = <T>(request?: string) =>
		new Promise<T>((resolve, reject) => {
			child.once("message", message => resolve(message as T));
			void exited.then(code => reject(new Error(`${factory} exited with code ${code}`)));
			if (request) child.send(request);
		});
	const { url } = await ask<{ url: string }>();
	return {
		url,
		cpuSeconds: () => ask<number>("cpu"),
		stop: async () => {
			if (child.connected) child.send("stop");
			await exited;
		}
	};
}

const ROOT = path.resolve(__dirname, "..");
const RUNNER = path.join(ROOT, "node_modules/moleculer/bin/moleculer-runner.js");
/** The token every bench request carries (test/support/node.ts uses the same). */
const BENCH_TOKEN = "test-service-token-0123456789";

/** User + system CPU seconds of a process and all its threads, from /proc (Linux). */
export function processCpuSeconds(pid: number): number {
	const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
	// utime and stime (fields 14 and 15) in clock ticks, counted after the parenthesised name.
	const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
	return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** The nats-server process on this machine that listens on `natsUrl`'s port, if one does (Linux /proc). */
export function natsServerPid(natsUrl: string): number | undefined {
	const port = new URL(natsUrl).port || "4222";
	const servers = fs
		.readdirSync("/proc")
		.filter(entry => /^\d+$/.test(entry))
		.flatMap(pid => {
			try {
				if (fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim() !== "nats-server") return [];
				return [{ pid: Number(pid), args: fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0") }];
			} catch {
				return []; // ended meanwhile
			}
		});
	return servers.find(({ args }) => {
		const flag = args.findIndex(arg => arg === "-p" || arg === "--port");
		return flag >= 0 ? args[flag + 1] === port : port === "4222";
	})?.pid;
}

/** `SERVICES` naming `names` for `serveProduct`: compiled, the runner finds `<name>.service.js` itself. */
export const servicesEnv = (names: string[]): string =>
	process.env.BENCH_COMPILED === "1" ? names.join(",") : names.map(name => `${name}.service.ts`).join(",");

/**
 * The product as `npm start` runs it: moleculer-runner with `moleculer.config` and every service of
 * the services directory (compiled `dist/` under `npm run bench`, the TypeScript sources with ts-node
 * otherwise), metrics on, in a process of its own. `env` adds to a minimal environment: the service
 * token, a free port on loopback and no per-tenant rate limit (the bench is one tenant at full speed).
 * Resolves once the node listens (`listening`) and the process has gone quiet (startup work such as the builtin
 * tools' vectors must not be counted as serving).
 */
export async function serveProduct(
	env: Record<string, string> = {},
	/** The log line that says the node serves; its first group is the URL. Nodes without the gateway print the metrics one. */
	listening = /API Gateway listening on (http:\/\/[^\s]+)/
): Promise<Server & { pid: number }> {
	const compiled = process.env.BENCH_COMPILED === "1";
	const args = compiled
		? [RUNNER, "--config", "dist/moleculer.config.js"]
		: [
				"-r",
				require.resolve("ts-node/register/transpile-only"),
				RUNNER,
				"--config",
				"moleculer.config.ts",
				"--mask",
				"**/*.service.ts"
			];
	const child = spawn(process.execPath, args, {
		cwd: ROOT,
		env: {
			PATH: process.env.PATH,
			HOME: process.env.HOME,
			SERVICEDIR: compiled ? "dist/services" : "services",
			SERVICE_TOKEN: BENCH_TOKEN,
			PORT: "0",
			HOST: "127.0.0.1",
			RATE_LIMIT: "0",
			...env
		},
		stdio: ["ignore", "pipe", "pipe"]
	});
	let output = "";
	const exited = new Promise<number | null>(resolve => child.once("exit", code => resolve(code)));
	const url = await new Promise<string>((resolve, reject) => {
		const onData = (chunk: Buffer) => {
			output = (output + chunk.toString()).slice(-8000);
			const url = listening.exec(output)?.[1];
			if (url) resolve(url);
		};
		child.stdout!.on("data", onData);
		child.stderr!.on("data", onData);
		void exited.then(code => reject(new Error(`npm start exited with code ${code}: ${output.slice(-2000)}`)));
	});
	const pid = child.pid!;
	// Quiet: under 5% of a core over a second, or 60 s at most.
	for (let i = 0; i < 60; i++) {
		const before = processCpuSeconds(pid);
		await new Promise(resolve => setTimeout(resolve, 1000));
		if (processCpuSeconds(pid) - before < 0.05) break;
	}
	return {
		url,
		pid,
		cpuSeconds: async () => processCpuSeconds(pid),
		stop: async () => {
			child.kill("SIGTERM");
			const timer = setTimeout(() => child.kill("SIGKILL"), 15000);
			await exited;
			clearTimeout(timer);
		}
	};
}

async function serveAsChild(file: string, factory: string): Promise<void> {
	const start = (require(file) as Record<string, () => Promise<Served>>)[factory];
	const server = await start();
	process.send!({ url: server.url });
	process.on("message", async message => {
		if (message === "cpu") {
			// Read from /proc as for the product, so that both sides are counted alike (all threads).
			process.send!(processCpuSeconds(process.pid));
			return;
		}
		await server.stop();
		// The IPC channel alone would keep the child alive.
		process.exit(0);
	});
}

export function readResults(scenario: string): ResultFile | null {
	const file = path.join(RESULTS_DIR, `${scenario}.json`);
	return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, "utf8")) as ResultFile) : null;
}

/** Merges `rows` into `results/<scenario>.json`: a metric measured again replaces its old row. */
export function writeResults(scenario: string, rows: Result[]): string {
	const kept = (readResults(scenario)?.rows ?? []).filter(old =>
		rows.every(row => row.metric !== old.metric)
	);
	const date = new Date().toISOString();
	const load = Math.round(os.loadavg()[0] * 10) / 10;
	const data: ResultFile = { scenario, date, load, machine: machine(), rows: [...kept, ...rows] };
	fs.mkdirSync(RESULTS_DIR, { recursive: true });
	const file = path.join(RESULTS_DIR, `${scenario}.json`);
	fs.writeFileSync(file, JSON.stringify(data, null, "\t") + "\n");
	return file;
}

/**
 * Starts the baseline: a bare moleculer-web gateway (restrict policy, JSON bodies) on a free port in
 * front of `broker`'s trivial actions, so ours and bare differ only by what the product adds.
 */
export async function startBareGateway(
	broker: ServiceBroker,
	aliases: Record<string, string>
): Promise<Served> {
	broker.createService({
		name: "gateway",
		mixins: [ApiGateway as unknown as ServiceSchema],
		settings: {
			port: 0,
			ip: "127.0.0.1",
			routes: [{ path: "/api/v1", mappingPolicy: "restrict", bodyParsers: { json: true }, aliases }]
		}
	});
	await broker.start();
	const gateway = broker.getLocalService("gateway") as unknown as { server: { address(): AddressInfo } };
	return { url: `http://127.0.0.1:${gateway.server.address().port}`, stop: () => broker.stop() };
}

/**
 * Measures ours and bare in `rounds` alternating rounds (bare first in odd rounds, ours first in even
 * ones), so that a drift of the machine's speed during the run (a shared VM) favours neither. Both
 * servers stay up, idle while the other is loaded; `stop` runs whatever happens.
 */
export async function alternate<C, M>(
	contenders: { bare: C; ours: C },
	rounds: number,
	measure: (contender: C) => Promise<M>,
	stop: () => Promise<unknown>
): Promise<{ bare: M; ours: M }[]> {
	const measured: { bare: M; ours: M }[] = [];
	try {
		for (let round = 0; round < rounds; round++) {
			const order = round % 2 === 0 ? (["bare", "ours"] as const) : (["ours", "bare"] as const);
			const one: Partial<Record<"bare" | "ours", M>> = {};
			for (const name of order) one[name] = await measure(contenders[name]);
			measured.push(one as { bare: M; ours: M });
			progress(`round ${round + 1}/${rounds} done`);
		}
	} finally {
		await stop();
	}
	return measured;
}

/** Runs a scenario on its own (`ts-node bench/<name>.ts`) and records its rows. */
export function runScenario(scenario: string, run: () => Promise<Result[]>): void {
	run()
		.then(rows => {
			console.table(rows, ["metric", "value", "baseline_value", "ratio"]);
			progress(`wrote ${writeResults(scenario, rows)}`);
		})
		.catch(err => {
			console.error(err);
			process.exitCode = 1;
		});
}

if (require.main === module) {
	serveAsChild(process.argv[2], process.argv[3]).catch(err => {
		console.error(err);
		process.exit(1);
	});
}
