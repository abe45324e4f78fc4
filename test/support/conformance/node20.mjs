/**
 * `node --import ./node20.mjs`: lets the MCP conformance suite (written for Node 22) run on Node 20
 * by resolving its `fs` imports to `fs-with-glob.mjs`. Does nothing on a Node that has `fs.globSync`.
 */
import fs from "node:fs";
import { register } from "node:module";

if (typeof fs.globSync !== "function") register("./node20-hooks.mjs", import.meta.url);
