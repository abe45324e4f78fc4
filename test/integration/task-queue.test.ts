import { BACKENDS } from "../support/backends";
import { taskQueueSuite } from "../support/suites/task-queue";

describe.each(BACKENDS)("TaskQueue on $name", ({ redisUrl }) => taskQueueSuite(() => redisUrl));
