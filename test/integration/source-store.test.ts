import { BACKENDS } from "../support/backends";
import { sourceStoreSuite } from "../support/suites/source-store";

describe.each(BACKENDS)("SourceStore on $name", ({ redisUrl }) => sourceStoreSuite(() => redisUrl));
