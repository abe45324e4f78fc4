import { useEffect, useState } from "preact/hooks";
import {
	duration,
	Empty,
	ErrorNotice,
	HealthBadge,
	Json,
	Loading,
	Time,
	ToolBadges,
	Unavailable,
	useLoad
} from "../common";
import { href, useConsole } from "../context";
import { invalidFields, SchemaForm } from "../schema-form";
import type { ExecutionResult, Tool, Usage } from "../types";
import { LatencyChart } from "./latency-chart";
import { VersionsPanel } from "./versions";

/** One tool: what it is, trying it, its health, usage and versions. */
export function ToolView({ toolId }: { toolId: string }) {
	const { call, capabilities } = useConsole();
	const tool = useLoad(() => call<Tool>("GET", `/tools/${encodeURIComponent(toolId)}`), [toolId]);
	const [actionError, setActionError] = useState<unknown>(null);
	const [runs, setRuns] = useState(0);
	const [settling, ready] = useSettling(["usage", "versions"]);

	if (tool.loading && !tool.data) return <Loading />;
	if (!tool.data)
		return (
			<section>
				<ErrorNotice error={tool.error} title="Could not load the tool" />
				<a href={href("catalog")}>Back to the catalog</a>
			</section>
		);
	const current = tool.data;
	const global = current.tenant_id === "*";

	const remove = async () => {
		if (!confirm(`Delete the tool "${current.name}"? Agents will no longer find or run it.`)) return;
		try {
			await call("DELETE", `/tools/${encodeURIComponent(current.id)}`);
			location.hash = href("catalog");
		} catch (err) {
			setActionError(err);
		}
	};

	const setStatus = async (status: "active" | "disabled") => {
		setActionError(null);
		try {
			await call("PUT", `/tools/${encodeURIComponent(current.id)}/status`, { status });
			tool.reload();
		} catch (err) {
			setActionError(err);
		}
	};

	return (
		<article aria-labelledby="tool-title" aria-busy={settling} class={settling ? "settling" : undefined}>
			{settling && <Loading />}
			<p class="crumbs">
				<a href={href("catalog")}>Catalog</a> /
			</p>
			<div class="view-header">
				<h1 id="tool-title">{current.name}</h1>
				<ToolBadges tool={current} />
				{!global && (
					<span class="header-actions">
						<a class="button secondary" href={href("tools", current.id, "edit")}>
							Edit
						</a>
						{capabilities.toolStatus &&
							(current.status === "disabled" ? (
								<button type="button" class="secondary" onClick={() => setStatus("active")}>
									Enable
								</button>
							) : (
								<button type="button" class="secondary" onClick={() => setStatus("disabled")}>
									Disable
								</button>
							))}
						<button type="button" class="danger" onClick={remove}>
							Delete
						</button>
					</span>
				)}
			</div>
			<ErrorNotice error={actionError} title="The change was refused" />
			<p class="description">{current.description || <span class="muted">No description.</span>}</p>
			<dl class="facts">
				<dt>Version</dt>
				<dd>{current.version}</dd>
				<dt>Definition hash</dt>
				<dd>
					<code class="hash">{current.definition_hash}</code>
				</dd>
				<dt>Tags</dt>
				<dd>{current.metadata?.tags?.join(", ") || <span class="muted">none</span>}</dd>
				<dt>Timeout</dt>
				<dd>{current.timeout_ms ?? 5000} ms</dd>
				<dt>Updated</dt>
				<dd>
					<Time iso={current.updated_at} />
				</dd>
			</dl>
			<div class="columns">
				<TryPanel tool={current} onRan={() => setRuns(r => r + 1)} />
				<div>
					<HealthPanel tool={current} onValidated={tool.reload} />
					<UsagePanel tool={current} runs={runs} onLoaded={() => ready("usage")} />
				</div>
			</div>
			<VersionsPanel tool={current} onRolledBack={tool.reload} onLoaded={() => ready("versions")} />
			<section class="panel" aria-labelledby="definition-title">
				<h2 id="definition-title">Definition</h2>
				<Json value={current} label="Tool definition" />
			</section>
		</article>
	);
}

/**
 * The page stays hidden (a "Loading…" line shown instead) until the panels that load their own data
 * have it, so none grows and pushes the others down while the user reads; after 5 s it shows anyway.
 */
function useSettling(parts: string[]): [boolean, (part: string) => void] {
	const [waiting, setWaiting] = useState(() => new Set(parts));
	useEffect(() => {
		const timer = setTimeout(() => setWaiting(new Set()), 5000);
		return () => clearTimeout(timer);
	}, []);
	const ready = (part: string) =>
		setWaiting(current => {
			if (!current.has(part)) return current;
			const next = new Set(current);
			next.delete(part);
			return next;
		});
	return [waiting.size > 0, ready];
}

/** Runs the tool now with a form generated from its `parameters` schema. */
function TryPanel({ tool, onRan }: { tool: Tool; onRan: () => void }) {
	const { call } = useConsole();
	const [parameters, setParameters] = useState<Record<string, unknown>>({});
	const [outcome, setOutcome] = useState<{ result: ExecutionResult; roundTripMs: number } | null>(null);
	const [error, setError] = useState<unknown>(null);
	const [busy, setBusy] = useState(false);

	const run = async (event: Event) => {
		event.preventDefault();
		const invalid = invalidFields(parameters);
		if (invalid.length) return setError(new Error(`Fix the JSON of: ${invalid.join(", ")}`));
		setBusy(true);
		setError(null);
		const started = performance.now();
		try {
			const result = await call<ExecutionResult>("POST", "/internal/execute", {
				tool_id: tool.id,
				parameters
			});
			setOutcome({ result, roundTripMs: Math.round(performance.now() - started) });
			onRan();
		} catch (err) {
			setOutcome(null);
			setError(err);
		} finally {
			setBusy(false);
		}
	};

	return (
		<section class="panel" aria-labelledby="try-title">
			<h2 id="try-title">Try it</h2>
			<form onSubmit={run}>
				<SchemaForm schema={tool.parameters ?? {}} value={parameters} onChange={setParameters} id="try" />
				<button type="submit" disabled={busy}>
					{busy ? "Running…" : "Run"}
				</button>
			</form>
			<ErrorNotice error={error} title="The tool did not run" />
			{outcome && (
				<div class={`outcome outcome-${outcome.result.status}`} role="status" aria-live="polite">
					<p>
						<strong>{outcome.result.status}</strong> in {duration(outcome.result.execution_time_ms)} (round
						trip {duration(outcome.roundTripMs)})
					</p>
					{outcome.result.status === "completed" ? (
						<Json value={outcome.result.result} label="Result" />
					) : (
						<p class="error-text">
							{outcome.result.error?.type}: {outcome.result.error?.message}
						</p>
					)}
				</div>
			)}
		</section>
	);
}

function HealthPanel({ tool, onValidated }: { tool: Tool; onValidated: () => void }) {
	const { call } = useConsole();
	const [error, setError] = useState<unknown>(null);
	const [note, setNote] = useState<string | null>(null);
	const warnings = tool.validation?.warnings ?? [];
	const validate = async () => {
		setError(null);
		try {
			const answer = await call<{ task_id?: string }>(
				"POST",
				`/tools/${encodeURIComponent(tool.id)}/validate`
			);
			setNote(answer?.task_id ? `Queued as task ${answer.task_id}.` : "Validated.");
			onValidated();
		} catch (err) {
			setError(err);
		}
	};
	return (
		<section class="panel" aria-labelledby="health-title">
			<h2 id="health-title">Health</h2>
			<p>
				<HealthBadge health={tool.health} /> checked <Time iso={tool.health?.checked_at} never="not yet" />
				{tool.health?.next_check_at && (
					<>
						, next check <Time iso={tool.health.next_check_at} />
					</>
				)}
			</p>
			{tool.health?.error && <p class="error-text">{tool.health.error}</p>}
			{warnings.length > 0 && (
				<div class="notice warning">
					<strong>Validation warnings</strong>
					<Json value={warnings} />
				</div>
			)}
			{tool.tenant_id !== "*" && (
				<button type="button" class="secondary" onClick={validate}>
					Validate again
				</button>
			)}
			{note && <p role="status">{note}</p>}
			<ErrorNotice error={error} title="Could not validate" />
		</section>
	);
}

/** The tenant's usage of the tool; `runs` changes after each run from this page, to read it again. */
function UsagePanel({ tool, runs, onLoaded }: { tool: Tool; runs: number; onLoaded: () => void }) {
	const { call, capabilities } = useConsole();
	const usage = useLoad(
		() =>
			capabilities.stats
				? call<Usage>("GET", `/tools/${encodeURIComponent(tool.id)}/stats`)
				: Promise.resolve(null),
		[tool.id, tool.version, runs]
	);
	useEffect(() => {
		if (!usage.loading) onLoaded();
	}, [usage.loading]);
	return (
		<section class="panel" aria-labelledby="usage-title">
			<h2 id="usage-title">Usage</h2>
			{!capabilities.stats ? (
				<Unavailable what="usage statistics" />
			) : usage.loading && !usage.data ? (
				<Loading />
			) : usage.error ? (
				<ErrorNotice error={usage.error} title="Could not load usage" />
			) : !usage.data || usage.data.calls === 0 ? (
				<Empty>Not run yet by this tenant.</Empty>
			) : (
				<>
					<p>
						{usage.data.calls} calls: {usage.data.completed} completed, {usage.data.failed} failed
					</p>
					<LatencyChart latency={usage.data.latency_ms} />
				</>
			)}
		</section>
	);
}
