import { randomBytes } from "crypto";
import { v7 as uuidv7 } from "uuid";

/** Time-ordered ids: lexicographic order is creation order, which gives stable cursor pagination. */
export const newId = (): string => uuidv7();

/** A URL-safe random secret of `bytes` bytes of entropy. */
export const newSecret = (bytes = 32): string => randomBytes(bytes).toString("base64url");
