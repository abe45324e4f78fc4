import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { ApiError } from "./api";
import type { Health, Tool } from "./types";

export interface Loaded<T> {
	data: T | undefined;
	error: unknown;
	loading: boolean;
	reload: () => void;
}

/** Runs `load` when `deps` change; a late answer of an earlier run is ignored. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): Loaded<T> {
	const [state, setState] = useState<{ data?: T; error?: unknown; loading: boolean }>({ loading: true });
	const [round, setRound] = useState(0);
	const current = useRef(0);
	useEffect(() => {
		const run = ++current.current;
		setState(previous => ({ data: previous.data, loading: true }));
		load().then(
			data => run === current.current && setState({ data, loading: false }),
			error => run === current.current && setState({ error, loading: false })
		);
	}, [...deps, round]);
	const reload = useCallback(() => setRound(r => r + 1), []);
	return { data: state.data, error: state.error, loading: state.loading, reload };
}

/** The API's own message for a failure, with the fields it names. */
export function ErrorNotice({ error, title }: { error: unknown; title?: string }) {
	if (!error) return null;
	const message = error instanceof Error ? error.message : String(error);
	const fields = error instanceof ApiError ? error.fields : [];
	return (
		<div class="notice error" role="alert">
			<strong>{title ?? "Something went wrong"}</strong>
			{error instanceof ApiError && error.status > 0 && (
				<span class="muted">
					{" "}
					({error.status} {error.type})
				</span>
			)}
			<p>{message}</p>
			{fields.length > 0 && (
				<ul>
					{fields.map(field => (
						<li key={field.field + field.message}>
							<code>{field.field}</code>: {field.message}
						</li>
					))}
				</ul>
			)}
		</div>
	);
}

export function Empty({ children }: { children: ComponentChildren }) {
	return <div class="notice empty">{children}</div>;
}

/** A view whose API this server does not have (an older or partial deployment). */
export function Unavailable({ what, children }: { what: string; children?: ComponentChildren }) {
	return (
		<div class="notice empty" role="status">
			<strong>Not available on this server.</strong>
			<p>This server's API does not offer {what}.</p>
			{children && <p>{children}</p>}
		</div>
	);
}

export function Loading({ label = "Loading…" }: { label?: string }) {
	return (
		<p class="muted" role="status" aria-live="polite">
			{label}
		</p>
	);
}

export function StatusBadge({ status }: { status: string }) {
	return <span class={`badge status-${status.replace(/[^a-z_]/g, "")}`}>{status.replace(/_/g, " ")}</span>;
}

export function HealthBadge({ health }: { health?: Health }) {
	const state = health?.state ?? "unknown";
	return (
		<span class={`badge health-${state}`} title={health?.error ?? undefined}>
			{state}
		</span>
	);
}

export function ToolBadges({ tool }: { tool: Tool }) {
	return (
		<span class="badges">
			<span class="badge type">{tool.type}</span>
			<StatusBadge status={tool.status} />
			<HealthBadge health={tool.health} />
			{tool.tenant_id === "*" && <span class="badge global">global</span>}
		</span>
	);
}

/** Milliseconds as a person reads them: 3.6 ms, 412 ms, 3.9 s. */
export const duration = (ms: number | undefined | null): string =>
	ms === undefined || ms === null
		? "?"
		: ms >= 1000
			? `${(ms / 1000).toFixed(1)} s`
			: ms >= 10
				? `${Math.round(ms)} ms`
				: `${Math.round(ms * 10) / 10} ms`;

export function Json({ value, label }: { value: unknown; label?: string }) {
	return (
		<pre class="json" tabIndex={0} aria-label={label}>
			{JSON.stringify(value, null, 2)}
		</pre>
	);
}

export function Time({ iso, never = "never" }: { iso?: string | null; never?: string }) {
	if (!iso) return <span class="muted">{never}</span>;
	const date = new Date(iso);
	return (
		<time dateTime={iso} title={iso}>
			{Number.isNaN(date.getTime()) ? iso : date.toLocaleString()}
		</time>
	);
}

/** Copies text to the clipboard; says whether it worked. */
export function CopyButton({ text, label = "Copy" }: { text: string; label?: string }) {
	const [copied, setCopied] = useState<string | null>(null);
	return (
		<button
			type="button"
			class="secondary"
			onClick={() =>
				navigator.clipboard.writeText(text).then(
					() => setCopied("Copied"),
					() => setCopied("Select and copy it by hand")
				)
			}
		>
			{copied ?? label}
		</button>
	);
}

/** A table's header: the named columns, then one for each row's actions, named for screen readers only. */
export function TableHead({ columns }: { columns: string[] }) {
	return (
		<thead>
			<tr>
				{columns.map(column => (
					<th scope="col" key={column}>
						{column}
					</th>
				))}
				<th scope="col">
					<span class="visually-hidden">Actions</span>
				</th>
			</tr>
		</thead>
	);
}

/** A one-line input with its label and the hint that describes it. */
export function TextField({
	id,
	label,
	hint,
	type = "text",
	value,
	onInput,
	autoComplete
}: {
	id: string;
	label: string;
	hint: ComponentChildren;
	type?: "text" | "url";
	value: string;
	onInput: (value: string) => void;
	autoComplete?: string;
}) {
	return (
		<div class="field">
			<label for={id}>{label}</label>
			<input
				id={id}
				// Preact types each input type apart; text and url take the same attributes.
				type={type as "text"}
				autoComplete={autoComplete}
				aria-describedby={`${id}-hint`}
				value={value}
				onInput={event => onInput((event.currentTarget as HTMLInputElement).value)}
			/>
			<p class="hint" id={`${id}-hint`}>
				{hint}
			</p>
		</div>
	);
}
