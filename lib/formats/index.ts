import type { RankedTool } from "../discovery/tenant-index";
import { toAnthropic } from "./anthropic";
import { toMcp } from "./mcp";
import { toNative, type DiscoveryView } from "./native";
import { toOpenAi } from "./openai";

/** Discovery output formats: one internal definition, one converter each. */
export const FORMATS = { native: toNative, openai: toOpenAi, anthropic: toAnthropic, mcp: toMcp } as const;

export type DiscoveryFormat = keyof typeof FORMATS;
export type { DiscoveryView };

/** The view applies to `native`; the other formats are what their clients need to call a tool. */
export const formatTools = (
	format: DiscoveryFormat,
	ranked: RankedTool[],
	view: DiscoveryView = "full"
): unknown => (format === "native" ? toNative(ranked, view) : FORMATS[format](ranked));
