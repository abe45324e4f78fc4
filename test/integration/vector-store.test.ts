import { BACKENDS } from "../support/backends";
import { vectorStoreSuite } from "../support/suites/vector-store";

describe.each(BACKENDS)("VectorStore ($name)", ({ redisUrl }) => vectorStoreSuite(() => redisUrl));
