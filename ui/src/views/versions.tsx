import { diffLines } from "diff";
import { useEffect, useState } from "preact/hooks";
import { Empty, ErrorNotice, Loading, TableHead, Time, Unavailable, useLoad } from "../common";
import { useConsole } from "../context";
import type { Tool } from "../types";

interface VersionEntry {
	version: number;
	definition_hash: string;
	updated_at: string;
}

/** Fields that describe the stored copy rather than the definition: left out of the diff. */
const NOT_DEFINITION = new Set(["health", "validation", "status", "created_at", "updated_at"]);

/** JSON with sorted keys, so a diff shows what changed and not where a key moved. */
const canonical = (value: unknown): unknown =>
	Array.isArray(value)
		? value.map(canonical)
		: value && typeof value === "object"
			? Object.fromEntries(
					Object.keys(value)
						.sort()
						.map(key => [key, canonical((value as Record<string, unknown>)[key])])
				)
			: value;

const definitionText = (tool: Tool) =>
	JSON.stringify(
		canonical(Object.fromEntries(Object.entries(tool).filter(([key]) => !NOT_DEFINITION.has(key)))),
		null,
		2
	);

/** The tool's versions, a diff between any two, and rollback to one. */
export function VersionsPanel({
	tool,
	onRolledBack,
	onLoaded
}: {
	tool: Tool;
	onRolledBack: () => void;
	/** Once the versions, and the diff shown first, have arrived (or failed). */
	onLoaded: () => void;
}) {
	const { call, capabilities } = useConsole();
	const base = `/tools/${encodeURIComponent(tool.id)}`;
	const versions = useLoad(
		() =>
			capabilities.versions
				? call<{ items: VersionEntry[] }>("GET", `${base}/versions`).then(found => found.items)
				: Promise.resolve([]),
		[tool.id, tool.version]
	);
	const [from, setFrom] = useState<number>(Math.max(1, tool.version - 1));
	const [to, setTo] = useState<number>(tool.version);
	useEffect(() => {
		setFrom(Math.max(1, tool.version - 1));
		setTo(tool.version);
	}, [tool.version]);
	const diff = useLoad(async () => {
		if (!capabilities.versions || from === to) return null;
		const [left, right] = await Promise.all(
			[from, to].map(version => call<Tool>("GET", `${base}?version=${version}`))
		);
		return diffLines(definitionText(left), definitionText(right));
	}, [from, to, tool.id, tool.version]);
	const [rollbackError, setRollbackError] = useState<unknown>(null);
	const diffShown = (versions.data?.length ?? 0) > 1 && from !== to;
	useEffect(() => {
		if (!versions.loading && !(diffShown && diff.loading)) onLoaded();
	}, [versions.loading, diff.loading, diffShown]);

	const rollback = async (version: number) => {
		if (!confirm(`Make version ${version}'s definition the current one (as version ${tool.version + 1})?`))
			return;
		try {
			setRollbackError(null);
			await call("POST", `${base}/rollback`, { version });
			onRolledBack();
		} catch (err) {
			setRollbackError(err);
		}
	};

	const choose = (set: (version: number) => void) => (event: Event) =>
		set(Number((event.currentTarget as HTMLSelectElement).value));

	return (
		<section class="panel" aria-labelledby="versions-title">
			<h2 id="versions-title">Versions</h2>
			{!capabilities.versions ? (
				<Unavailable what="version history" />
			) : versions.loading && !versions.data ? (
				<Loading />
			) : versions.error ? (
				<ErrorNotice error={versions.error} title="Could not load the versions" />
			) : !versions.data?.length ? (
				<Empty>No earlier versions.</Empty>
			) : (
				<>
					<div class="table-wrap stack">
						<table>
							<TableHead columns={["Version", "Definition hash", "Saved"]} />
							<tbody>
								{versions.data.map(entry => (
									<tr key={entry.version}>
										<td data-label="Version">{entry.version}</td>
										<td data-label="Definition hash">
											<code class="hash">{entry.definition_hash}</code>
										</td>
										<td data-label="Saved">
											<Time iso={entry.updated_at} />
										</td>
										<td>
											{entry.version !== tool.version && tool.tenant_id !== "*" && (
												<button type="button" class="secondary" onClick={() => rollback(entry.version)}>
													Roll back to v{entry.version}
												</button>
											)}
										</td>
									</tr>
								))}
							</tbody>
						</table>
					</div>
					<ErrorNotice error={rollbackError} title="Could not roll back" />
					{versions.data.length > 1 && (
						<>
							<div class="filters">
								<div class="field">
									<label for="diff-from">Compare version</label>
									<select id="diff-from" value={String(from)} onChange={choose(setFrom)}>
										{versions.data.map(entry => (
											<option key={entry.version} value={String(entry.version)}>
												{entry.version}
											</option>
										))}
									</select>
								</div>
								<div class="field">
									<label for="diff-to">with version</label>
									<select id="diff-to" value={String(to)} onChange={choose(setTo)}>
										{versions.data.map(entry => (
											<option key={entry.version} value={String(entry.version)}>
												{entry.version}
											</option>
										))}
									</select>
								</div>
							</div>
							<ErrorNotice error={diff.error} title="Could not load the versions to compare" />
							{from === to ? (
								<p class="muted">Choose two different versions.</p>
							) : diff.data ? (
								<pre class="diff" tabIndex={0} aria-label={`Changes from version ${from} to ${to}`}>
									{diff.data.map((part, index) => (
										<span
											key={index}
											class={part.added ? "diff-added" : part.removed ? "diff-removed" : "diff-same"}
										>
											{part.value
												.replace(/\n$/, "")
												.split("\n")
												.map(line => `${part.added ? "+ " : part.removed ? "- " : "  "}${line}\n`)
												.join("")}
										</span>
									))}
								</pre>
							) : (
								<Loading />
							)}
						</>
					)}
				</>
			)}
		</section>
	);
}
