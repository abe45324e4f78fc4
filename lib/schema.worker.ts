/**
 * Worker-thread side of SchemaGuard: checks and compiles tenant schemas and validates parameters
 * against them where a costly schema or a large argument cannot hold up the event loop. The main
 * thread terminates this worker when a task overruns its time limit.
 */
import { checkParametersSchema, createAjv, SchemaCache, toProblems } from "./json-schema";
import type { SchemaTask, SchemaTaskResult } from "./schema-guard";

const MAX_PROBLEMS = 100;

const ajv = createAjv();
const compiled = new SchemaCache(ajv, 500);

export default function runSchemaTask(task: SchemaTask): SchemaTaskResult {
	if (task.kind === "check") return checkParametersSchema(ajv, task.schema, task.field);
	const validate = compiled.get(task.key, task.schema);
	// A huge argument can break every item: the first problems say enough and cost little to send back.
	return validate(JSON.parse(task.dataJson))
		? []
		: toProblems(validate.errors, task.field).slice(0, MAX_PROBLEMS);
}
