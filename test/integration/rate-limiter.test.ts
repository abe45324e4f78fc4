import { BACKENDS } from "../support/backends";
import { rateLimiterSuite } from "../support/suites/rate-limiter";

describe.each(BACKENDS)("RateLimiter on $name", ({ redisUrl }) => rateLimiterSuite(() => redisUrl));
