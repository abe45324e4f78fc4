/**
 * Container health check (Dockerfile HEALTHCHECK): a gateway node answers `/health`; a node without
 * the gateway answers its Prometheus listener. Exits 0 when the node answers, 1 otherwise.
 */
const runsGateway =
	!process.env.SERVICES || process.env.SERVICES.split(",").some(name => name.trim() === "api");
const url = runsGateway
	? `http://127.0.0.1:${process.env.PORT ?? 3000}/health`
	: `http://127.0.0.1:${process.env.METRICS_PORT ?? 3030}/metrics`;

fetch(url, { signal: AbortSignal.timeout(2500) }).then(
	res => process.exit(res.ok ? 0 : 1),
	() => process.exit(1)
);
