import { newSecret } from "./ids";

/**
 * Makes sure a node that runs services has a `SERVICE_TOKEN` before they load (they read it from
 * the environment). Unset in development, one is made up and printed once on its own line, so a
 * bare `npm start` can be used at once; in production an unset token is a deployment mistake, and
 * `refuse` gets the one line that says so.
 */
export function ensureServiceToken(
	env: NodeJS.ProcessEnv,
	print: (line: string) => void,
	refuse: (line: string) => never
): void {
	if (env.SERVICE_TOKEN) return;
	if (env.NODE_ENV === "production")
		refuse(
			"SERVICE_TOKEN is not set; NODE_ENV=production requires it (a shared secret of the trusted services)"
		);
	env.SERVICE_TOKEN = newSecret();
	print(`SERVICE_TOKEN=${env.SERVICE_TOKEN}`);
}
