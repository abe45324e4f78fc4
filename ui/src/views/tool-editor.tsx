import { useEffect, useState } from "preact/hooks";
import { ErrorNotice, Loading } from "../common";
import { href, useConsole } from "../context";
import { invalidFields, InvalidJson, JsonInput, SchemaForm } from "../schema-form";
import { TOOL_TYPES, type JsonSchema, type Tool } from "../types";

/** The definition fields a person edits, as a JSON Schema: the form below is generated from it. */
const DEFINITION_FORM: JsonSchema = {
	type: "object",
	required: ["name", "type"],
	properties: {
		name: {
			type: "string",
			title: "Name",
			description: "A letter, then letters, digits, _ or -; unique in the tenant."
		},
		type: { type: "string", title: "Type", enum: [...TOOL_TYPES] },
		description: {
			type: "string",
			title: "Description",
			maxLength: 4096,
			description: "What the tool does, in the words an agent will search with."
		},
		timeout_ms: { type: "integer", title: "Timeout (ms)", minimum: 1, maximum: 300000 },
		metadata: {
			type: "object",
			title: "Metadata",
			properties: {
				tags: { type: "array", title: "Tags", items: { type: "string" } },
				category: { type: "string", title: "Category" }
			}
		},
		permissions: {
			type: "object",
			title: "Permissions",
			properties: {
				agents: {
					type: "array",
					title: "Agents",
					items: { type: "string" },
					description: "Agent ids that may discover and run the tool; * for all."
				}
			}
		},
		config: {
			type: "object",
			title: "Config (JSON)",
			description: "Settings of the tool's type, e.g. url and method of an external_api tool."
		},
		parameters: {
			type: "object",
			title: "Parameters (JSON Schema)",
			description: "The schema of the tool's input; the Try it form is generated from it."
		}
	}
};

/** Fields the server owns: not part of what is sent. */
const SERVER_FIELDS = [
	"id",
	"tenant_id",
	"version",
	"definition_hash",
	"status",
	"health",
	"validation",
	"created_at",
	"updated_at"
];

const definitionOf = (tool: Tool): Record<string, unknown> =>
	Object.fromEntries(Object.entries(tool).filter(([key]) => !SERVER_FIELDS.includes(key)));

/** `config` and `metadata` are merged by PATCH (JSON Merge Patch): a key removed here is sent as null. */
function mergePatch(
	before: Record<string, unknown>,
	after: Record<string, unknown>
): Record<string, unknown> {
	const patch: Record<string, unknown> = { ...after };
	for (const field of ["config", "metadata"]) {
		const old = before[field] as Record<string, unknown> | undefined;
		if (!old) continue;
		const next = { ...((after[field] as Record<string, unknown> | undefined) ?? {}) };
		for (const key of Object.keys(old)) if (!(key in next)) next[key] = null;
		patch[field] = next;
	}
	return patch;
}

const NEW_TOOL = { type: "calculator", permissions: { agents: ["*"] } };

/** Register a tool (no id) or edit one: a generated form, or the raw JSON of the definition. */
export function ToolEditorView({ toolId }: { toolId?: string }) {
	const { call } = useConsole();
	const [original, setOriginal] = useState<Tool | null>(null);
	const [definition, setDefinition] = useState<Record<string, unknown> | null>(toolId ? null : NEW_TOOL);
	const [mode, setMode] = useState<"form" | "json">("form");
	const [generation, setGeneration] = useState(0);
	const [error, setError] = useState<unknown>(null);
	const [check, setCheck] = useState<{ valid: boolean; errors?: unknown[] } | null>(null);
	const [busy, setBusy] = useState(false);

	useEffect(() => {
		if (!toolId) return;
		call<Tool>("GET", `/tools/${encodeURIComponent(toolId)}`).then(tool => {
			setOriginal(tool);
			setDefinition(definitionOf(tool));
		}, setError);
	}, [toolId]);

	if (!definition) return error ? <ErrorNotice error={error} title="Could not load the tool" /> : <Loading />;

	const ready = (): Record<string, unknown> | null => {
		const invalid = invalidFields(definition);
		if (invalid.length) {
			setError(new Error(`Fix the JSON of: ${invalid.join(", ")}`));
			return null;
		}
		return definition;
	};

	const save = async (event: Event) => {
		event.preventDefault();
		const body = ready();
		if (!body) return;
		setBusy(true);
		setError(null);
		try {
			const saved = original
				? await call<Tool>("PATCH", `/tools/${encodeURIComponent(original.id)}`, {
						...mergePatch(definitionOf(original), body),
						expected_version: original.version
					})
				: await call<Tool>("POST", "/tools", body);
			location.hash = href("tools", saved.id);
		} catch (err) {
			setError(err);
		} finally {
			setBusy(false);
		}
	};

	const validate = async () => {
		const body = ready();
		if (!body) return;
		setError(null);
		try {
			setCheck(await call("POST", "/registry/validate", body));
		} catch (err) {
			setCheck(null);
			setError(err);
		}
	};

	const switchMode = (next: "form" | "json") => {
		if (next === mode) return;
		const invalid = invalidFields(definition);
		if (invalid.length) return setError(new Error(`Fix the JSON of ${invalid.join(", ")} first`));
		setError(null);
		setMode(next);
		// Inputs keep their own text: a new generation starts them from the current definition.
		setGeneration(g => g + 1);
	};
	const parameters = definition.parameters as JsonSchema | undefined;

	return (
		<section aria-labelledby="editor-title">
			<p class="crumbs">
				<a href={href("catalog")}>Catalog</a> /
				{original && (
					<>
						{" "}
						<a href={href("tools", original.id)}>{original.name}</a> /
					</>
				)}
			</p>
			<h1 id="editor-title">{original ? `Edit ${original.name}` : "Register a tool"}</h1>
			<div class="tabs" role="group" aria-label="Editor">
				<button type="button" aria-pressed={mode === "form"} onClick={() => switchMode("form")}>
					Form
				</button>
				<button type="button" aria-pressed={mode === "json"} onClick={() => switchMode("json")}>
					JSON
				</button>
			</div>
			<form onSubmit={save} class="editor" key={generation}>
				{mode === "form" ? (
					<SchemaForm schema={DEFINITION_FORM} value={definition} onChange={setDefinition} id="definition" />
				) : (
					<div class="field">
						<label for="definition-json">Definition (JSON)</label>
						<JsonInput
							id="definition-json"
							rows={20}
							value={definition}
							onChange={value =>
								setDefinition(
									value && typeof value === "object" && !Array.isArray(value)
										? (value as Record<string, unknown>)
										: {
												"(definition)":
													value instanceof InvalidJson ? value : new InvalidJson(JSON.stringify(value ?? ""))
											}
								)
							}
						/>
					</div>
				)}
				{mode === "form" &&
					parameters &&
					typeof parameters === "object" &&
					!(parameters instanceof InvalidJson) && (
						// Disabled: a preview's required fields must not stop the form from being submitted.
						<fieldset class="preview" disabled>
							<legend>Preview of the Try it form</legend>
							<SchemaForm schema={parameters} value={{}} onChange={() => undefined} id="preview" />
						</fieldset>
					)}
				<ErrorNotice error={error} title={original ? "Could not save" : "Could not register"} />
				{check && (
					<div class={`notice ${check.valid ? "ok" : "error"}`} role="status">
						{check.valid ? "The definition is valid." : "The definition is not valid:"}
						{!check.valid && (
							<ul>
								{(check.errors ?? []).map((entry, index) => (
									<li key={index}>
										{typeof entry === "object" && entry && "message" in entry
											? `${(entry as { field?: string }).field ?? ""} ${(entry as { message: string }).message}`
											: JSON.stringify(entry)}
									</li>
								))}
							</ul>
						)}
					</div>
				)}
				<div class="button-row">
					<button type="submit" disabled={busy}>
						{busy ? "Saving…" : original ? "Save as a new version" : "Register"}
					</button>
					<button type="button" class="secondary" onClick={validate}>
						Check without saving
					</button>
				</div>
			</form>
		</section>
	);
}
