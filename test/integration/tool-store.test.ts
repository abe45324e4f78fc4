import { BACKENDS } from "../support/backends";
import { toolStoreSuite } from "../support/suites/tool-store";

describe.each(BACKENDS)("ToolStore on $name", ({ redisUrl }) => toolStoreSuite(() => redisUrl));
