import { isMainThread } from "worker_threads";
import { recordLoop } from "./loop-stalls";

// Preloaded (`node -r`) into processes the tests start; worker threads inherit the flag, and are not measured.
const file = process.env.LOOP_STALLS_FILE;
if (file && isMainThread) recordLoop(file);
