import type { RankedTool } from "../discovery/tenant-index";
import { toAnthropic } from "./anthropic";
import { toMcp } from "./mcp";
import { toNative } from "./native";
import { toOpenAi } from "./openai";

/** Discovery output formats: one internal definition, one converter each. */
export const FORMATS = { native: toNative, openai: toOpenAi, anthropic: toAnthropic, mcp: toMcp } as const;

export type DiscoveryFormat = keyof typeof FORMATS;

export const formatTools = (format: DiscoveryFormat, ranked: RankedTool[]): unknown =>
	FORMATS[format](ranked);
