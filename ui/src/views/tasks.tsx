import { useEffect, useState } from "preact/hooks";
import { ApiError } from "../api";
import { duration, Empty, ErrorNotice, Json, StatusBadge, Time, useLoad } from "../common";
import { useConsole, type WatchedTask } from "../context";
import type { LiveFeed } from "../live";
import { invalidFields, SchemaForm } from "../schema-form";
import type { LiveFrame, Page, Task, Tool } from "../types";

const FINAL: Task["status"][] = ["completed", "failed", "cancelled"];

/** Applies one `/ws` frame to a watched task. */
function apply(watched: WatchedTask[], frame: LiveFrame): boolean {
	const entry = watched.find(item => item.task.task_id === frame.task_id);
	if (!entry) return false;
	const data = frame.data ?? {};
	if (frame.event === "task_completed") {
		entry.task = { ...entry.task, status: "completed", result: data.result };
		entry.executionMs = data.execution_time_ms as number | undefined;
	} else if (frame.event === "task_failed") {
		entry.task = {
			...entry.task,
			status: "failed",
			error: { type: String(data.error_type ?? ""), message: String(data.error ?? "") }
		};
	} else if (frame.event === "task_status_update" && !FINAL.includes(entry.task.status)) {
		entry.task = { ...entry.task, status: data.status as Task["status"] };
		entry.message = (data.details as { message?: string } | undefined)?.message;
	} else return false;
	return true;
}

function watch(watched: WatchedTask[], task: Task, toolName: string, live: LiveFeed) {
	if (!watched.some(item => item.task.task_id === task.task_id)) watched.unshift({ task, toolName });
	// A fast task may have finished before its submission was answered: replay what the feed saw.
	for (const { frame } of [...live.history].reverse())
		if (frame.task_id === task.task_id) apply(watched, frame);
}

/** Submit tasks to the tenant's queue and watch them change status live over `/ws`. */
export function TasksView() {
	const { call, live, memory } = useConsole();
	const watched = memory.tasks;
	const [, setTick] = useState(0);
	const refresh = () => setTick(t => t + 1);
	useEffect(() => live.onFrame(frame => apply(watched, frame) && refresh()), [live]);
	// Frames sent while the feed was down are not replayed: after a reconnect, read unfinished tasks once.
	useEffect(() => {
		let wasOpen = live.state === "open";
		return live.onChange(() => {
			const open = live.state === "open";
			if (open && !wasOpen)
				for (const entry of watched.filter(item => !FINAL.includes(item.task.status)))
					call<Task>("GET", `/internal/tasks/${encodeURIComponent(entry.task.task_id)}`).then(
						task => {
							entry.task = task;
							refresh();
						},
						() => undefined
					);
			wasOpen = open;
		});
	}, [live]);

	const tools = useLoad(() => call<Page<Tool>>("GET", "/tools?limit=200").then(page => page.items), []);
	const [toolId, setToolId] = useState("");
	const [parameters, setParameters] = useState<Record<string, unknown>>({});
	const [priority, setPriority] = useState(0);
	const [error, setError] = useState<unknown>(null);
	const [busy, setBusy] = useState(false);
	const [lookup, setLookup] = useState("");
	const [lookupError, setLookupError] = useState<unknown>(null);
	const tool = tools.data?.find(item => item.id === toolId);

	const submit = async (event: Event) => {
		event.preventDefault();
		if (!tool) return setError(new Error("Choose a tool."));
		const invalid = invalidFields(parameters);
		if (invalid.length) return setError(new Error(`Fix the JSON of: ${invalid.join(", ")}`));
		setBusy(true);
		setError(null);
		try {
			const accepted = await call<{ task_id: string; status: Task["status"] }>("POST", "/internal/tasks", {
				type: "tool_execution",
				priority,
				metadata: { source: "api" },
				payload: { tool_id: tool.id, parameters }
			});
			watch(
				watched,
				{
					task_id: accepted.task_id,
					tenant_id: "",
					created_at: new Date().toISOString(),
					status: accepted.status ?? "pending",
					type: "tool_execution",
					payload: { tool_id: tool.id, tool_name: tool.name, parameters }
				},
				tool.name,
				live
			);
			refresh();
		} catch (err) {
			setError(err);
		} finally {
			setBusy(false);
		}
	};

	const find = async (event: Event) => {
		event.preventDefault();
		setLookupError(null);
		try {
			const task = await call<Task>("GET", `/internal/tasks/${encodeURIComponent(lookup.trim())}`);
			watch(watched, task, task.payload?.tool_name ?? task.payload?.tool_id ?? task.type, live);
			refresh();
		} catch (err) {
			setLookupError(err);
		}
	};

	const cancel = async (entry: WatchedTask) => {
		try {
			entry.task = await call<Task>("DELETE", `/internal/tasks/${encodeURIComponent(entry.task.task_id)}`);
			entry.message = undefined;
		} catch (err) {
			entry.message = err instanceof ApiError ? err.message : String(err);
		}
		refresh();
	};

	return (
		<section aria-labelledby="tasks-title">
			<h1 id="tasks-title">Tasks</h1>
			<div class="columns">
				<form class="panel" onSubmit={submit} aria-labelledby="submit-title">
					<h2 id="submit-title">Queue a task</h2>
					<div class="field">
						<label for="task-tool">Tool</label>
						<select
							id="task-tool"
							value={toolId}
							required
							onChange={event => {
								setToolId((event.currentTarget as HTMLSelectElement).value);
								setParameters({});
							}}
						>
							<option value="">{tools.loading ? "Loading tools…" : "Choose a tool…"}</option>
							{tools.data?.map(item => (
								<option key={item.id} value={item.id}>
									{item.name}
								</option>
							))}
						</select>
					</div>
					<ErrorNotice error={tools.error} title="Could not list the tools" />
					{tool && (
						<fieldset class="nested">
							<legend>Parameters</legend>
							<SchemaForm
								key={tool.id}
								schema={tool.parameters ?? {}}
								value={parameters}
								onChange={setParameters}
								id="task-param"
							/>
						</fieldset>
					)}
					<div class="field">
						<label for="task-priority">Priority (0–9, 9 most urgent)</label>
						<input
							id="task-priority"
							type="number"
							min={0}
							max={9}
							step={1}
							value={priority}
							onInput={event => setPriority(Number((event.currentTarget as HTMLInputElement).value))}
						/>
					</div>
					<ErrorNotice error={error} title="The task was not queued" />
					<button type="submit" disabled={busy}>
						{busy ? "Queueing…" : "Queue task"}
					</button>
				</form>
				<form class="panel" onSubmit={find} aria-labelledby="lookup-title">
					<h2 id="lookup-title">Watch a task</h2>
					<div class="field">
						<label for="task-lookup">Task id</label>
						<input
							id="task-lookup"
							type="text"
							required
							value={lookup}
							onInput={event => setLookup((event.currentTarget as HTMLInputElement).value)}
						/>
					</div>
					<ErrorNotice error={lookupError} title="Could not read the task" />
					<button type="submit" class="secondary">
						Watch
					</button>
				</form>
			</div>
			<h2>In this session</h2>
			{live.state !== "open" && watched.length > 0 && (
				<p class="notice warning" role="status">
					The live feed is disconnected: statuses update again when it reconnects.
				</p>
			)}
			{watched.length === 0 ? (
				<Empty>No tasks yet. Queue one above; its status changes here as it runs.</Empty>
			) : (
				<ul class="task-list" aria-live="polite">
					{watched.map(entry => (
						<li key={entry.task.task_id} class="card task" data-task-id={entry.task.task_id}>
							<div class="tool-card-head">
								<strong>{entry.toolName}</strong>
								<StatusBadge status={entry.task.status} />
								{entry.task.status === "pending" && (
									<button type="button" class="secondary small" onClick={() => cancel(entry)}>
										Cancel
									</button>
								)}
							</div>
							<p class="meta muted">
								<code>{entry.task.task_id}</code> · queued <Time iso={entry.task.created_at} />
								{entry.executionMs !== undefined && ` · ran in ${duration(entry.executionMs)}`}
							</p>
							{entry.message && <p class="muted">{entry.message}</p>}
							{entry.task.status === "completed" && <Json value={entry.task.result} label="Result" />}
							{entry.task.status === "failed" && (
								<p class="error-text">
									{entry.task.error?.type}: {entry.task.error?.message}
								</p>
							)}
						</li>
					))}
				</ul>
			)}
		</section>
	);
}
