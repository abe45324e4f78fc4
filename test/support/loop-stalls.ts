import { appendFileSync, readFileSync } from "fs";

/**
 * One stall of an event loop: when it ended (epoch ms), how long the loop could not run a timer, and
 * how much of that time the thread itself was running (its own work: code, GC, compiling). The rest
 * is the OS not running the process at all, which on a loaded host no code of the process causes.
 */
export interface Stall {
	at: number;
	ms: number;
	ownMs: number;
}

/** A timer this often; one that fires more than RECORD_MS late is a stall. */
const TICK_MS = 10;
const RECORD_MS = 50;

/**
 * CPU time (user + system) this thread has used, in ms: Linux's per-thread accounting, in clock ticks
 * of 10 ms. Null where there is none; every stall then counts wholly as the process's own.
 */
function threadCpuMs(): number | null {
	try {
		// Fields after "pid (name) ": state is the 1st, utime the 12th and stime the 13th.
		const fields = readFileSync("/proc/thread-self/stat", "utf8").split(") ")[1].split(" ");
		return (Number(fields[11]) + Number(fields[12])) * 10;
	} catch {
		return null;
	}
}

/** Reports every stall of this thread's event loop until the returned function is called. */
export function watchLoop(onStall: (stall: Stall) => void): () => void {
	let last = performance.now();
	let lastCpu = threadCpuMs();
	const timer = setInterval(() => {
		const now = performance.now();
		const cpu = threadCpuMs();
		const ms = now - last - TICK_MS;
		if (ms > RECORD_MS) {
			const ownMs = cpu === null || lastCpu === null ? ms : Math.min(ms, cpu - lastCpu);
			onStall({ at: Date.now(), ms: Math.round(ms), ownMs: Math.round(ownMs) });
		}
		last = now;
		lastCpu = cpu;
	}, TICK_MS).unref();
	return () => clearInterval(timer);
}

/** Preloaded into a child process (`-r`) that has LOOP_STALLS_FILE set, records its main loop's stalls there. */
export const RECORDER = require.resolve("./loop-stalls-recorder");

/** Appends every stall of this thread's loop to `file`, one JSON line each: a SIGKILLed process keeps what it recorded. */
export function recordLoop(file: string): void {
	watchLoop(stall => appendFileSync(file, `${JSON.stringify(stall)}\n`));
}

/** The stalls `recordLoop` wrote to `file` (none when the process recorded none). */
export function readStalls(file: string): Stall[] {
	let text = "";
	try {
		text = readFileSync(file, "utf8");
	} catch {
		return [];
	}
	return text
		.split("\n")
		.filter(Boolean)
		.map(line => JSON.parse(line) as Stall);
}

/** The longest stall and the most own work in one stall, among `stalls` that ended within [from, to]. */
export function worst(stalls: Stall[], from: number, to: number): { ms: number; ownMs: number } {
	const inWindow = stalls.filter(stall => stall.at >= from && stall.at <= to);
	return {
		ms: Math.max(0, ...inWindow.map(stall => stall.ms)),
		ownMs: Math.max(0, ...inWindow.map(stall => stall.ownMs))
	};
}
