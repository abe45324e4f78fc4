import { BACKENDS } from "../support/backends";
import { auditLogSuite } from "../support/suites/audit-log";

describe.each(BACKENDS)("audit log on the $name backend", ({ name, redisUrl }) =>
	auditLogSuite(() => redisUrl, name)
);
