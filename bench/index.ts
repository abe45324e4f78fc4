import { execSync } from "child_process";
import fs from "fs";
import os from "os";
import path from "path";
import { machine, progress, readResults, writeResults, type Result, type ResultFile } from "./harness";

/** Scenario modules of `bench/`, in table order; each exports `run(): Promise<Result[]>`. */
const SCENARIOS = ["catalog", "execute", "tasks", "transport", "discover", "ranking", "quality"];

const exists = (name: string) => [".ts", ".js"].some(ext => fs.existsSync(path.join(__dirname, name + ext)));

function cell(value: number | string | null): string {
	if (value === null) return "—";
	return typeof value === "number" ? value.toLocaleString("en-US") : value.replace(/\|/g, "\\|");
}

const tableRow = (cells: (number | string | null)[]) => `| ${cells.map(cell).join(" | ")} |`;

function markdown(files: ResultFile[]): string {
	const m = machine();
	return [
		"# Tool Registry benchmarks",
		"",
		`Generated ${new Date().toISOString()} by \`npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}\`` +
			` (load average ${os
				.loadavg()
				.map(l => l.toFixed(1))
				.join(", ")} at the end).`,
		"",
		`Machine: ${m.cpu}, ${m.cores} cores, ${m.memory_gb} GB RAM, Node ${m.node}, ${m.os}.`,
		"",
		"How: ours is the product as `npm start` runs it (moleculer-runner + `moleculer.config`, metrics on) in " +
			"a process of its own, each baseline in another, the load generator (autocannon, 50 connections) in " +
			"a third; rows with a baseline alternate rounds and report the median round; server CPU is read " +
			"from /proc for every thread. Rows measured otherwise say so in their notes. Scenarios not run this " +
			"time keep their last figures, dated below.",
		"",
		...files.map(
			file =>
				`- \`${file.scenario}\` measured ${file.date}${file.load === undefined ? "" : ` (load average ${file.load})`}`
		),
		"",
		tableRow(["scenario", "metric", "ours", "baseline", "baseline value", "ratio", "notes"]),
		"| --- | --- | ---: | --- | ---: | ---: | --- |",
		...files.flatMap(file =>
			file.rows.map(row =>
				tableRow([
					row.scenario,
					row.metric,
					`${cell(row.value)} ${row.unit}`,
					row.baseline,
					row.baseline_value,
					row.ratio,
					row.notes
				])
			)
		),
		""
	].join("\n");
}

async function main() {
	// The compiled service is what production runs (calculator workers without ts-node included).
	progress("building dist/ (npm run build)");
	execSync("npm run build", { cwd: path.join(__dirname, ".."), stdio: "ignore" });
	process.env.BENCH_COMPILED = "1";
	const named = process.argv.slice(2);
	const unknown = named.filter(name => !SCENARIOS.includes(name) || !exists(name));
	if (unknown.length)
		throw new Error(
			`Unknown scenario(s) ${unknown.join(", ")}; known: ${SCENARIOS.filter(exists).join(", ")}`
		);
	for (const name of named.length ? named : SCENARIOS.filter(exists)) {
		progress(`scenario ${name}`);
		const { run } = require(`./${name}`) as { run(): Promise<Result[]> };
		progress(`wrote ${writeResults(name, await run())}`);
	}
	// Scenarios not run this time keep their last results in the table.
	const files = SCENARIOS.map(readResults).filter((file): file is ResultFile => file !== null);
	const target = path.join(__dirname, "RESULTS.md");
	fs.writeFileSync(target, markdown(files));
	progress(`wrote ${target}`);
}

main().catch(err => {
	console.error(err);
	process.exitCode = 1;
});
