/**
 * Container health check (Dockerfile HEALTHCHECK): every node answers `/health` on its PORT, from the
 * gateway or, on a node without one, from its metrics listener. Exits 0 when the node answers, 1 otherwise.
 */
const url = `http://127.0.0.1:${process.env.PORT ?? 3000}/health`;

fetch(url, { signal: AbortSignal.timeout(2500) }).then(
	res => process.exit(res.ok ? 0 : 1),
	() => process.exit(1)
);
