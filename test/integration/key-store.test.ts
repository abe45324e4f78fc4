import { BACKENDS } from "../support/backends";
import { keyStoreSuite } from "../support/suites/key-store";

describe.each(BACKENDS)("KeyStore on $name", ({ redisUrl }) => keyStoreSuite(() => redisUrl));
