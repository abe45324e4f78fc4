import { useState } from "preact/hooks";
import {
	Empty,
	ErrorNotice,
	HealthBadge,
	Loading,
	TableHead,
	TextField,
	Time,
	Unavailable,
	useLoad
} from "../common";
import { useConsole } from "../context";
import { invalidFields, JsonInput } from "../schema-form";
import type { Page, Source } from "../types";

/** What an add or a refresh changed, as the API reports it. */
interface Changes {
	added?: string[];
	updated?: string[];
	disabled?: string[];
	enabled?: string[];
	skipped?: { name: string; reason: string }[];
}

function describeChanges(name: string, changes: Changes | undefined): string {
	if (!changes) return `${name}: done.`;
	const parts = (["added", "updated", "disabled", "enabled", "skipped"] as const)
		.map(kind => [kind, changes[kind]?.length ?? 0] as const)
		.filter(([, count]) => count > 0)
		.map(([kind, count]) => `${count} ${kind}`);
	const skipped = (changes.skipped ?? []).map(item => `${item.name} (${item.reason})`);
	return `${name}: ${parts.length ? parts.join(", ") : "no changes"}.${skipped.length ? ` Skipped: ${skipped.join("; ")}.` : ""}`;
}

/** Where many tools come from at once: remote MCP servers and OpenAPI documents. */
export function SourcesView() {
	const { capabilities } = useConsole();
	return (
		<section aria-labelledby="sources-title">
			<h1 id="sources-title">Tool sources</h1>
			{capabilities.sources ? <Sources /> : <Unavailable what="tool sources" />}
		</section>
	);
}

function Sources() {
	const { call } = useConsole();
	const sources = useLoad(() => call<Page<Source>>("GET", "/sources").then(page => page.items), []);
	const [type, setType] = useState<"mcp" | "openapi">("mcp");
	const [name, setName] = useState("");
	const [url, setUrl] = useState("");
	const [baseUrl, setBaseUrl] = useState("");
	const [note, setNote] = useState<string | null>(null);
	// A new key after adding clears the JSON boxes, which keep their own text.
	const [formKey, setFormKey] = useState(0);
	const [spec, setSpec] = useState<unknown>(undefined);
	const [headers, setHeaders] = useState<unknown>(undefined);
	const [error, setError] = useState<unknown>(null);
	const [actionError, setActionError] = useState<unknown>(null);
	const [busy, setBusy] = useState<string | null>(null);

	const add = async (event: Event) => {
		event.preventDefault();
		const invalid = invalidFields({ spec, headers });
		if (invalid.length) return setError(new Error(`Fix the JSON of: ${invalid.join(", ")}`));
		setError(null);
		setNote(null);
		setBusy("add");
		try {
			const created = await call<Source & { changes?: Changes }>("POST", "/sources", {
				type,
				name: name.trim(),
				...(url.trim() ? { url: url.trim() } : {}),
				...(type === "openapi" && spec !== undefined ? { spec } : {}),
				...(type === "openapi" && baseUrl.trim() ? { base_url: baseUrl.trim() } : {}),
				...(headers !== undefined ? { headers } : {})
			});
			setNote(describeChanges(created.name, created.changes));
			setName("");
			setUrl("");
			setBaseUrl("");
			setSpec(undefined);
			setHeaders(undefined);
			setFormKey(k => k + 1);
			sources.reload();
		} catch (err) {
			setError(err);
		} finally {
			setBusy(null);
		}
	};

	const act = async (source: Source, method: string, path: string) => {
		setActionError(null);
		setNote(null);
		setBusy(source.id);
		try {
			const answer = await call<{ changes?: Changes } | null>(
				method,
				`/sources/${encodeURIComponent(source.id)}${path}`
			);
			setNote(
				method === "DELETE"
					? `${source.name}: deleted with its tools.`
					: describeChanges(source.name, answer?.changes)
			);
			sources.reload();
		} catch (err) {
			setActionError(err);
		} finally {
			setBusy(null);
		}
	};

	return (
		<>
			<form class="panel" key={formKey} onSubmit={add} aria-labelledby="add-source-title">
				<h2 id="add-source-title">Add a source</h2>
				<div class="form-fields">
					<div class="field">
						<label for="source-type">Type</label>
						<select
							id="source-type"
							value={type}
							onChange={event => setType((event.currentTarget as HTMLSelectElement).value as "mcp")}
						>
							<option value="mcp">MCP server</option>
							<option value="openapi">OpenAPI document</option>
						</select>
					</div>
					<div class="field">
						<label for="source-name">Name</label>
						<input
							id="source-name"
							type="text"
							required
							value={name}
							onInput={event => setName((event.currentTarget as HTMLInputElement).value)}
						/>
					</div>
					<div class="field">
						<label for="source-url">{type === "mcp" ? "Server URL" : "Document URL"}</label>
						<input
							id="source-url"
							type="url"
							required={type === "mcp"}
							value={url}
							onInput={event => setUrl((event.currentTarget as HTMLInputElement).value)}
						/>
					</div>
					{type === "openapi" && (
						<>
							<div class="field">
								<label for="source-spec">Or the OpenAPI document (JSON)</label>
								<JsonInput id="source-spec" rows={6} value={spec} onChange={setSpec} />
							</div>
							<TextField
								id="source-base-url"
								label="Base URL (optional)"
								hint="Where the operations are called; by default the document's first server."
								type="url"
								value={baseUrl}
								onInput={setBaseUrl}
							/>
						</>
					)}
					<div class="field">
						<label for="source-headers">Headers (JSON, optional)</label>
						<JsonInput id="source-headers" rows={2} value={headers} onChange={setHeaders} />
					</div>
				</div>
				<ErrorNotice error={error} title="The source was not added" />
				<button type="submit" disabled={busy === "add"}>
					{busy === "add" ? "Adding…" : "Add source"}
				</button>
			</form>
			{note && (
				<p class="notice ok" role="status">
					{note}
				</p>
			)}
			<ErrorNotice error={sources.error} title="Could not list the sources" />
			<ErrorNotice error={actionError} title="The source action failed" />
			{sources.loading && !sources.data ? (
				<Loading />
			) : !sources.data?.length ? (
				<Empty>No sources yet. Add an MCP server or an OpenAPI document to import its tools.</Empty>
			) : (
				<div class="table-wrap stack">
					<table>
						<TableHead columns={["Name", "Type", "Where", "Health", "Tools", "Refreshed"]} />
						<tbody>
							{sources.data.map(source => (
								<tr key={source.id}>
									<td data-label="Name">{source.name}</td>
									<td data-label="Type">{source.type}</td>
									<td data-label="Where" class="wrap">
										{source.url ?? source.base_url ?? <span class="muted">inline</span>}
									</td>
									<td data-label="Health">
										<HealthBadge health={source.health} />
										{source.health?.error && <div class="error-text small">{source.health.error}</div>}
									</td>
									<td data-label="Tools">{source.tool_count ?? "?"}</td>
									<td data-label="Refreshed">
										<Time iso={source.last_refresh_at} />
									</td>
									<td class="row-actions">
										{source.tenant_id === "*" ? (
											<span class="badge global">global</span>
										) : (
											<>
												<button
													type="button"
													class="secondary small"
													disabled={busy === source.id}
													onClick={() => act(source, "POST", "/refresh")}
												>
													Refresh
												</button>
												<button
													type="button"
													class="danger small"
													disabled={busy === source.id}
													onClick={() =>
														confirm(`Delete the source ${source.name} and its tools?`) &&
														act(source, "DELETE", "")
													}
												>
													Delete
												</button>
											</>
										)}
									</td>
								</tr>
							))}
						</tbody>
					</table>
				</div>
			)}
		</>
	);
}
