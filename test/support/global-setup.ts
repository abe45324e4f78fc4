import { Socket } from "net";

/** Whether a TCP service answers on host:port within a short time. */
const answers = (host: string, port: number) =>
	new Promise<boolean>(resolve => {
		const socket = new Socket();
		const done = (ok: boolean) => {
			socket.destroy();
			resolve(ok);
		};
		socket.setTimeout(1000, () => done(false));
		socket.once("error", () => done(false));
		socket.connect(port, host, () => done(true));
	});

/**
 * Finds the real Redis and NATS the integration tests use. Locally a missing one skips its
 * suites with a loud notice; in CI (CI=true) it fails the run: integration tests never skip silently there.
 */
export default async function globalSetup(): Promise<void> {
	const targets = [
		{ env: "TEST_REDIS_URL", url: process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379/0" },
		{ env: "TEST_NATS_URL", url: process.env.TEST_NATS_URL ?? "nats://127.0.0.1:4222" }
	];
	const missing: string[] = [];
	for (const target of targets) {
		const { hostname, port } = new URL(target.url);
		if (await answers(hostname, Number(port))) process.env[target.env] = target.url;
		else {
			delete process.env[target.env];
			missing.push(target.url);
		}
	}
	if (missing.length === 0) return;
	const notice = `Integration services not reachable: ${missing.join(", ")}`;
	if (process.env.CI) throw new Error(`${notice} (CI requires them)`);
	process.stdout.write(`\n*** ${notice}: their suites are SKIPPED ***\n\n`);
}
