import type { Tool } from "@modelcontextprotocol/sdk/types.js";
import { parse as parseYaml } from "yaml";
import { invalid } from "../errors";
import { guardedRequest, OutboundError, OutboundRefused } from "../outbound/guarded-fetch";
import type { JsonObject, ToolAnnotations, ToolDefinition, ToolSource } from "../../types/wire";
import { describeConnectError, refusalOf, type McpConnection } from "./mcp-connection";
import { importOpenApi } from "./openapi-import";
import type { OfferedTool } from "./reconcile";
import { sourceToolName } from "./tool-names";

/** The source's server or document cannot be reached now; trying later may work. */
export class SourceUnavailable extends Error {
	override name = "SourceUnavailable";
}

export interface OfferOptions {
	/** The pooled client of an MCP source. */
	connection?: McpConnection;
	allowHosts: readonly string[];
	timeoutMs: number;
	maxSpecBytes: number;
}

const MAX_DESCRIPTION = 4096;

/** `$schema` names the remote's dialect; the registry reads every schema as draft 2020-12. */
function withoutDialect(schema: object): JsonObject {
	const { $schema: _dialect, ...rest } = schema as JsonObject;
	return rest;
}

/** A remote MCP tool as a registry definition: schemas and annotations carried over as the server gives them. */
function mcpDefinition(source: Pick<ToolSource, "id" | "name">, tool: Tool): ToolDefinition {
	return {
		name: sourceToolName(source.name, tool.name),
		// A description is required (agents choose tools by it): a remote that gives none gets one that says what the tool is.
		description: (
			tool.description?.trim() ||
			tool.title?.trim() ||
			`${tool.name} (a tool of the MCP server ${source.name})`
		).slice(0, MAX_DESCRIPTION),
		type: "mcp",
		parameters: withoutDialect(tool.inputSchema),
		config: { source_id: source.id, remote_name: tool.name },
		metadata: { tags: ["mcp"] },
		...(tool.outputSchema ? { output_schema: withoutDialect(tool.outputSchema) } : {}),
		...(annotations(tool) ? { annotations: annotations(tool) } : {})
	};
}

/** The remote tool's title and hints as the registry's annotations; undefined when it gives none. */
function annotations(tool: Tool): ToolAnnotations | undefined {
	const hints = tool.annotations ?? {};
	const mapped: ToolAnnotations = {
		...((tool.title ?? hints.title) ? { title: String(tool.title ?? hints.title).slice(0, 200) } : {}),
		...(typeof hints.readOnlyHint === "boolean" ? { read_only: hints.readOnlyHint } : {}),
		...(typeof hints.destructiveHint === "boolean" ? { destructive: hints.destructiveHint } : {}),
		...(typeof hints.idempotentHint === "boolean" ? { idempotent: hints.idempotentHint } : {}),
		...(typeof hints.openWorldHint === "boolean" ? { open_world: hints.openWorldHint } : {})
	};
	return Object.keys(mapped).length ? mapped : undefined;
}

async function mcpTools(source: ToolSource, connection: McpConnection): Promise<OfferedTool[]> {
	let tools: Tool[];
	try {
		tools = await connection.listTools();
	} catch (err) {
		const refusal = refusalOf(err);
		if (refusal)
			throw invalid("The source's address is refused", [{ field: "url", message: refusal.message }]);
		throw new SourceUnavailable(describeConnectError(err));
	}
	return tools.map(tool => ({ key: tool.name, definition: mcpDefinition(source, tool) }));
}

/** The OpenAPI document of a source: given inline, or fetched through the outbound guard. */
async function openApiDocument(source: ToolSource, options: OfferOptions): Promise<unknown> {
	let text: string;
	if (source.spec !== undefined && typeof source.spec !== "string") return source.spec;
	if (typeof source.spec === "string") text = source.spec;
	else {
		try {
			const response = await guardedRequest(source.url!, {
				headers: { accept: "application/json, application/yaml;q=0.9, */*;q=0.5", ...source.headers },
				allowHosts: options.allowHosts,
				timeoutMs: options.timeoutMs,
				maxResponseBytes: options.maxSpecBytes
			});
			if (response.status >= 400)
				throw new SourceUnavailable(`the document's server answered ${response.status}`);
			text = response.body.toString("utf8");
		} catch (err) {
			if (err instanceof OutboundRefused)
				throw invalid("The source's address is refused", [{ field: "url", message: err.message }]);
			if (err instanceof OutboundError) throw new SourceUnavailable(err.message);
			throw err;
		}
	}
	try {
		// YAML 1.2 reads JSON as well.
		return parseYaml(text, { maxAliasCount: 100 });
	} catch (err) {
		throw invalid("The OpenAPI document cannot be parsed", [
			{ field: "spec", message: (err as Error).message }
		]);
	}
}

/**
 * What a source offers now, as tool definitions keyed for reconciliation. Throws a 422 for what will
 * never work as given (a refused address, an invalid document) and SourceUnavailable for a server
 * that does not answer.
 */
export async function offeredTools(source: ToolSource, options: OfferOptions): Promise<OfferedTool[]> {
	if (source.type === "mcp") return mcpTools(source, options.connection!);
	const imported = await importOpenApi(await openApiDocument(source, options), {
		sourceName: source.name,
		baseUrl: source.base_url,
		documentUrl: source.url,
		headers: source.headers
	});
	if (!imported.ok) throw invalid("The OpenAPI document cannot be imported", imported.problems);
	return imported.tools;
}
