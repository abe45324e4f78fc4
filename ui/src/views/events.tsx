import { useState } from "preact/hooks";
import { duration, Empty, Json, Time } from "../common";
import { useLive } from "../context";
import type { LiveFrame } from "../types";

const KINDS = { all: "All", tool: "Tools", task: "Tasks" } as const;

/** One line about a frame: the tool or task it is about and what happened. */
function summary(frame: LiveFrame): string {
	const data = frame.data ?? {};
	const tool = data.tool as { name?: string; version?: number } | undefined;
	if (tool) return `${tool.name ?? "?"} (v${tool.version ?? "?"})`;
	if (frame.event === "task_status_update") return `task ${frame.task_id}: ${String(data.status ?? "")}`;
	if (frame.event === "task_completed")
		return `task ${frame.task_id} completed in ${duration(data.execution_time_ms as number | undefined)}`;
	if (frame.event === "task_failed") return `task ${frame.task_id} failed: ${String(data.error ?? "")}`;
	return frame.task_id ?? "";
}

/** The tenant's live feed: tool and task events as the gateway's `/ws` pushes them. */
export function EventsView() {
	const live = useLive();
	const [kind, setKind] = useState<keyof typeof KINDS>("all");
	const frames = live.history.filter(({ frame }) => kind === "all" || frame.event.startsWith(kind));
	return (
		<section aria-labelledby="events-title">
			<div class="view-header">
				<h1 id="events-title">Events</h1>
				<div class="tabs" role="group" aria-label="Show">
					{Object.entries(KINDS).map(([value, label]) => (
						<button
							key={value}
							type="button"
							aria-pressed={kind === value}
							onClick={() => setKind(value as keyof typeof KINDS)}
						>
							{label}
						</button>
					))}
				</div>
			</div>
			<p class="muted">
				{
					{
						open: "Connected: events appear here as they happen (the last 200 are kept).",
						connecting: "Connecting to the live feed…",
						closed: "The live feed is disconnected; reconnecting.",
						off: "This credential cannot read the live feed: it needs the tools:read scope."
					}[live.state]
				}
			</p>
			{frames.length === 0 ? (
				<Empty>No events yet. Register or change a tool, or run a task, and it shows up here.</Empty>
			) : (
				<ol class="event-list" aria-live="polite">
					{frames.map(({ seq, frame }) => (
						<li key={seq} class="event">
							<details>
								<summary>
									<Time iso={frame.timestamp} /> <span class="badge">{frame.event}</span> {summary(frame)}
								</summary>
								<Json value={frame} label="Event" />
							</details>
						</li>
					))}
				</ol>
			)}
		</section>
	);
}
