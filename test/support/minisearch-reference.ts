import MiniSearch from "minisearch";
import { parameterText, processTerm, tagsOf, tokenize } from "../../lib/discovery/text";
import type { StoredTool } from "../../types/wire";

/**
 * The MiniSearch index discovery used before `LexicalIndex`, configured as it was: the reference its
 * unit test checks order and scores against, and the baseline of `npm run bench -- ranking`.
 */
export function miniSearchReference(tools: StoredTool[]): MiniSearch<StoredTool> {
	const search = new MiniSearch<StoredTool>({
		fields: ["name", "description", "tags", "parameters"],
		extractField: (tool, field) =>
			field === "tags"
				? tagsOf(tool).join(" ")
				: field === "parameters"
					? parameterText(tool)
					: String((tool as never)[field] ?? ""),
		tokenize,
		processTerm,
		searchOptions: {
			boost: { name: 3, tags: 2, description: 1, parameters: 0.25 },
			prefix: true,
			fuzzy: 0.2,
			combineWith: "OR"
		}
	});
	search.addAll(tools);
	return search;
}
