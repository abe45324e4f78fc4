import { useRef, useState } from "preact/hooks";
import type { JsonSchema } from "./types";

/** A JSON field whose text does not parse: the form refuses to submit while one is left. */
export class InvalidJson {
	constructor(readonly text: string) {}
}

/** Field paths of the values still holding unparsed JSON. */
export function invalidFields(value: unknown, path = ""): string[] {
	if (value instanceof InvalidJson) return [path || "(value)"];
	if (value && typeof value === "object" && !Array.isArray(value))
		return Object.entries(value).flatMap(([key, inner]) =>
			invalidFields(inner, path ? `${path}.${key}` : key)
		);
	return [];
}

const withKey = (object: Record<string, unknown>, key: string, value: unknown) => {
	const next = { ...object };
	if (value === undefined) delete next[key];
	else next[key] = value;
	return next;
};

const typeOf = (schema: JsonSchema): string | undefined =>
	Array.isArray(schema.type) ? schema.type.find(t => t !== "null") : schema.type;

interface FormProps {
	schema: JsonSchema;
	value: Record<string, unknown>;
	onChange: (value: Record<string, unknown>) => void;
	/** Prefix of the inputs' ids, unique on the page. */
	id: string;
	/** Fields the form leaves out (edited elsewhere). */
	omit?: string[];
}

/**
 * A form generated from an object's JSON Schema: an input per property (text, number, checkbox,
 * choice list, comma list, nested group), and a JSON text box for what has no simpler input.
 */
export function SchemaForm({ schema, value, onChange, id, omit = [] }: FormProps) {
	// The value with every change so far: two fields changed before the next render (a name typed,
	// then a type picked at once) must both be kept, not the second built on the value of before the first.
	const latest = useRef(value);
	latest.current = value;
	const properties = Object.entries(schema.properties ?? {}).filter(([name]) => !omit.includes(name));
	const required = new Set(schema.required ?? []);
	if (properties.length === 0) return <p class="muted">No parameters.</p>;
	return (
		<div class="form-fields">
			{properties.map(([name, field]) => (
				<SchemaField
					key={name}
					name={name}
					schema={field}
					required={required.has(name)}
					value={value[name]}
					onChange={next => {
						latest.current = withKey(latest.current, name, next);
						onChange(latest.current);
					}}
					id={`${id}-${name}`}
				/>
			))}
		</div>
	);
}

interface FieldProps {
	name: string;
	schema: JsonSchema;
	required: boolean;
	value: unknown;
	onChange: (value: unknown) => void;
	id: string;
}

function SchemaField({ name, schema, required, value, onChange, id }: FieldProps) {
	const type = typeOf(schema);
	const label = (
		<label for={id}>
			{schema.title ?? name}
			{required && (
				<span class="required" aria-hidden="true">
					{" "}
					*
				</span>
			)}
		</label>
	);
	const hintId = schema.description ? `${id}-hint` : undefined;
	const hint = schema.description && (
		<p class="hint" id={hintId}>
			{schema.description}
		</p>
	);
	const common = { id, name, "aria-describedby": hintId, required, "aria-required": required };

	if (type === "object" && schema.properties)
		return (
			<fieldset class="nested">
				<legend>{schema.title ?? name}</legend>
				{hint}
				<SchemaForm
					schema={schema}
					value={(value as Record<string, unknown>) ?? {}}
					onChange={next => onChange(Object.keys(next).length ? next : undefined)}
					id={id}
				/>
			</fieldset>
		);

	if (type === "boolean")
		return (
			<div class="field checkbox">
				<input
					type="checkbox"
					{...common}
					required={false}
					checked={value === true}
					onChange={event => onChange((event.currentTarget as HTMLInputElement).checked)}
				/>
				{label}
				{hint}
			</div>
		);

	let input;
	if (Array.isArray(schema.enum))
		input = (
			<select
				{...common}
				value={value === undefined ? "" : JSON.stringify(value)}
				onChange={event => {
					const text = (event.currentTarget as HTMLSelectElement).value;
					onChange(text === "" ? undefined : JSON.parse(text));
				}}
			>
				<option value="">{required ? "Choose…" : "(none)"}</option>
				{schema.enum.map(option => (
					<option key={JSON.stringify(option)} value={JSON.stringify(option)}>
						{String(option)}
					</option>
				))}
			</select>
		);
	else if (type === "number" || type === "integer")
		input = (
			<input
				type="number"
				step={type === "integer" ? 1 : "any"}
				min={schema.minimum}
				max={schema.maximum}
				{...common}
				value={value === undefined ? "" : String(value)}
				onInput={event => {
					const text = (event.currentTarget as HTMLInputElement).value;
					onChange(text === "" ? undefined : Number.isNaN(Number(text)) ? text : Number(text));
				}}
			/>
		);
	else if (type === "string")
		input =
			Number(schema.maxLength ?? 0) > 256 ? (
				<textarea
					rows={3}
					{...common}
					value={(value as string) ?? ""}
					onInput={event => onChange((event.currentTarget as HTMLTextAreaElement).value || undefined)}
				/>
			) : (
				<input
					type="text"
					autoComplete="off"
					spellcheck={false}
					{...common}
					value={(value as string) ?? ""}
					onInput={event => onChange((event.currentTarget as HTMLInputElement).value || undefined)}
				/>
			);
	else if (type === "array" && schema.items && typeOf(schema.items) === "string")
		input = <ListInput {...common} value={value} onChange={onChange} />;
	else input = <JsonInput {...common} value={value} onChange={onChange} />;

	return (
		<div class="field">
			{label}
			{input}
			{hint}
		</div>
	);
}

/** A list of strings typed comma-separated; the text is kept as typed (a trailing comma included). */
function ListInput({
	value,
	onChange,
	...rest
}: {
	value: unknown;
	onChange: (value: unknown) => void;
	[attribute: string]: unknown;
}) {
	const [text, setText] = useState(() => (Array.isArray(value) ? value.join(", ") : ""));
	return (
		<input
			type="text"
			autoComplete="off"
			placeholder="comma-separated"
			{...rest}
			value={text}
			onInput={event => {
				const next = (event.currentTarget as HTMLInputElement).value;
				setText(next);
				const items = next
					.split(",")
					.map(item => item.trim())
					.filter(Boolean);
				onChange(items.length ? items : undefined);
			}}
		/>
	);
}

interface JsonInputProps {
	id: string;
	value: unknown;
	onChange: (value: unknown) => void;
	rows?: number;
	[attribute: string]: unknown;
}

/** A JSON text box: its value is the parsed JSON, or an InvalidJson while the text does not parse. */
export function JsonInput({ id, value, onChange, rows = 4, ...rest }: JsonInputProps) {
	const [text, setText] = useState(() =>
		value instanceof InvalidJson ? value.text : value === undefined ? "" : JSON.stringify(value, null, 2)
	);
	const invalid = value instanceof InvalidJson;
	return (
		<>
			<textarea
				{...rest}
				id={id}
				class="code"
				rows={rows}
				spellcheck={false}
				aria-invalid={invalid}
				value={text}
				onInput={event => {
					const next = (event.currentTarget as HTMLTextAreaElement).value;
					setText(next);
					if (next.trim() === "") return onChange(undefined);
					try {
						onChange(JSON.parse(next));
					} catch {
						onChange(new InvalidJson(next));
					}
				}}
			/>
			{invalid && <p class="field-error">Not valid JSON yet.</p>}
		</>
	);
}
