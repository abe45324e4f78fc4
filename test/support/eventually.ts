/** Retries an assertion until it passes or `timeoutMs` runs out (then its last error is thrown). */
export async function eventually<T>(
	assertion: () => Promise<T>,
	timeoutMs = 10000,
	intervalMs = 50
): Promise<T> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		try {
			return await assertion();
		} catch (err) {
			if (Date.now() > deadline) throw err;
			await new Promise(resolve => setTimeout(resolve, intervalMs));
		}
	}
}

/** Polls `check` until it holds; the error names what never happened. */
export async function until(
	what: string,
	check: () => boolean | Promise<boolean>,
	timeoutMs: number,
	intervalMs = 50
): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (!(await check())) {
		if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
		await new Promise(resolve => setTimeout(resolve, intervalMs));
	}
}
