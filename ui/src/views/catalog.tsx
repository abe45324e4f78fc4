import { useState } from "preact/hooks";
import { query } from "../api";
import { Empty, ErrorNotice, Loading, ToolBadges, useLoad } from "../common";
import { href, useConsole } from "../context";
import { HEALTH_STATES, TOOL_STATUSES, TOOL_TYPES, type Page, type Tool } from "../types";

interface Filters {
	query: string;
	type: string;
	status: string;
	health: string;
	tag: string;
}

const NO_FILTERS: Filters = { query: "", type: "", status: "", health: "", tag: "" };

interface Found {
	tools: { tool: Tool; score?: number }[];
	next: string | null;
}

/**
 * The catalog: the management list (`GET /tools`) when there is no search text, else the ranked
 * discovery search that agents use. Filters the API has no parameter for apply to the page shown.
 */
export function CatalogView() {
	const { call } = useConsole();
	const [draft, setDraft] = useState<Filters>(NO_FILTERS);
	const [filters, setFilters] = useState<Filters>(NO_FILTERS);
	const [extra, setExtra] = useState<Found>({ tools: [], next: null });
	const [moreError, setMoreError] = useState<unknown>(null);

	const page = (cursor?: string): Promise<Found> =>
		call<Page<Tool>>(
			"GET",
			`/tools${query({ type: filters.type, status: filters.status, tag: filters.tag, limit: 50, cursor })}`
		).then(found => ({ tools: found.items.map(tool => ({ tool })), next: found.next_cursor ?? null }));

	const search = () =>
		call<{ items: { tool: Tool; score: number }[] }>("POST", "/registry/discover", {
			query: filters.query,
			limit: 50,
			...(filters.type ? { types: [filters.type] } : {}),
			...(filters.tag ? { tags: [filters.tag] } : {})
		}).then(found => ({ tools: found.items, next: null }));

	const found = useLoad(() => {
		setExtra({ tools: [], next: null });
		return filters.query.trim() ? search() : page();
	}, [filters]);

	const apply = (next: Filters) => {
		setDraft(next);
		setFilters(next);
	};
	const select = (name: keyof Filters) => (event: Event) =>
		apply({ ...draft, [name]: (event.currentTarget as HTMLSelectElement).value });

	const all = [...(found.data?.tools ?? []), ...extra.tools];
	const shown = all.filter(
		({ tool }) =>
			(!filters.status || tool.status === filters.status) &&
			(!filters.health || (tool.health?.state ?? "unknown") === filters.health)
	);
	const next = extra.tools.length ? extra.next : (found.data?.next ?? null);

	return (
		<section aria-labelledby="catalog-title">
			<div class="view-header">
				<h1 id="catalog-title">Catalog</h1>
				<a class="button" href={href("register")}>
					Register a tool
				</a>
			</div>
			<form
				class="filters"
				role="search"
				onSubmit={event => {
					event.preventDefault();
					apply(draft);
				}}
			>
				<div class="field grow">
					<label for="catalog-query">Search</label>
					<input
						id="catalog-query"
						type="search"
						placeholder="What should the tool do?"
						value={draft.query}
						onInput={event => setDraft({ ...draft, query: (event.currentTarget as HTMLInputElement).value })}
					/>
				</div>
				<FilterSelect
					id="catalog-type"
					label="Type"
					value={draft.type}
					options={TOOL_TYPES}
					onChange={select("type")}
				/>
				<FilterSelect
					id="catalog-status"
					label="Status"
					value={draft.status}
					options={TOOL_STATUSES}
					onChange={select("status")}
				/>
				<FilterSelect
					id="catalog-health"
					label="Health"
					value={draft.health}
					options={HEALTH_STATES}
					onChange={select("health")}
				/>
				<div class="field">
					<label for="catalog-tag">Tag</label>
					<input
						id="catalog-tag"
						type="text"
						value={draft.tag}
						onInput={event => setDraft({ ...draft, tag: (event.currentTarget as HTMLInputElement).value })}
					/>
				</div>
				<div class="field actions">
					<button type="submit">Search</button>
				</div>
			</form>
			<ErrorNotice error={found.error} title="Could not load the catalog" />
			{found.loading && !found.data ? (
				<Loading />
			) : found.data && shown.length === 0 ? (
				<Empty>
					{filters === NO_FILTERS ? (
						<>
							No tools yet. <a href={href("register")}>Register the first one</a>.
						</>
					) : (
						"No tool matches these filters."
					)}
				</Empty>
			) : (
				<ul class="tool-list" aria-busy={found.loading}>
					{shown.map(({ tool, score }) => (
						<li key={tool.id} class="card tool-card">
							<div class="tool-card-head">
								<a class="tool-name" href={href("tools", tool.id)}>
									{tool.name}
								</a>
								<ToolBadges tool={tool} />
							</div>
							<p class="description">{tool.description || <span class="muted">No description.</span>}</p>
							<p class="meta muted">
								v{tool.version}
								{tool.metadata?.tags?.length ? ` · ${tool.metadata.tags.join(", ")}` : ""}
								{score !== undefined ? ` · score ${score.toFixed(3)}` : ""}
							</p>
						</li>
					))}
				</ul>
			)}
			<ErrorNotice error={moreError} title="Could not load more tools" />
			{next && (
				<button
					type="button"
					class="secondary"
					onClick={() =>
						page(next).then(
							more => setExtra({ tools: [...extra.tools, ...more.tools], next: more.next }),
							setMoreError
						)
					}
				>
					Load more
				</button>
			)}
		</section>
	);
}

function FilterSelect(props: {
	id: string;
	label: string;
	value: string;
	options: readonly string[];
	onChange: (event: Event) => void;
}) {
	return (
		<div class="field">
			<label for={props.id}>{props.label}</label>
			<select id={props.id} value={props.value} onChange={props.onChange}>
				<option value="">Any</option>
				{props.options.map(option => (
					<option key={option} value={option}>
						{option.replace(/_/g, " ")}
					</option>
				))}
			</select>
		</div>
	);
}
