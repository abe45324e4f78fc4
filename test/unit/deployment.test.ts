import { execFileSync } from "child_process";
import { existsSync, readFileSync } from "fs";
import path from "path";
import { parse } from "yaml";

const root = path.join(__dirname, "../..");
const read = (file: string) => readFileSync(path.join(root, file), "utf8");
const hasDockerCompose = (() => {
	try {
		execFileSync("docker-compose", ["version"], { stdio: "ignore" });
		return true;
	} catch {
		return false;
	}
})();
/** CI installs Debian's docker-compose (it validates files without a Docker engine); locally it may be absent. */
const itWithCompose = hasDockerCompose || process.env.CI ? it : it.skip;

describe("docker-compose.yml", () => {
	// Merge keys (`<<`) are YAML 1.1: resolved as Compose resolves them.
	const compose = parse(read("docker-compose.yml"), { merge: true });

	itWithCompose("passes `docker-compose config` validation", () => {
		const rendered = execFileSync("docker-compose", ["-f", "docker-compose.yml", "config"], {
			cwd: root,
			env: { ...process.env, SERVICE_TOKEN: "compose-test-token" },
			encoding: "utf8"
		});
		const resolved = parse(rendered);
		expect(resolved.services.gateway.environment.SERVICE_TOKEN).toBe("compose-test-token");
	});

	it("runs NATS with JetStream on durable storage and Redis with an append-only file", () => {
		const { nats, redis } = compose.services;
		expect(nats.command).toEqual(expect.arrayContaining(["--jetstream", "--store_dir", "/data"]));
		expect(nats.volumes).toEqual(["nats-data:/data"]);
		expect(redis.command).toEqual(expect.arrayContaining(["--appendonly", "yes"]));
		expect(redis.volumes).toEqual(["redis-data:/data"]);
		expect(Object.keys(compose.volumes)).toEqual(["nats-data", "redis-data"]);
	});

	it("runs one gateway node and two executor nodes wired by the documented variables", () => {
		const { gateway, "executor-1": first, "executor-2": second } = compose.services;
		expect(gateway.environment.SERVICES).toBe("api,keys,registry,validator,notifier");
		expect(gateway.ports).toEqual(["3000:3000"]);
		for (const node of [gateway, first, second]) {
			expect(node.build).toBe(".");
			expect(node.environment).toMatchObject({
				TRANSPORTER: "nats://nats:4222",
				REDIS_URL: "redis://redis:6379",
				SERVICE_TOKEN: expect.stringContaining("SERVICE_TOKEN"),
				ORCHESTRATOR_WS_URL: expect.any(String),
				ORCHESTRATOR_URL: expect.any(String),
				OUTBOUND_ALLOW_HOSTS: expect.any(String),
				LOG_FORMAT: "json"
			});
			expect(node.depends_on).toEqual({
				nats: { condition: "service_healthy" },
				redis: { condition: "service_healthy" }
			});
		}
		expect([first.environment.SERVICES, second.environment.SERVICES]).toEqual(["executor", "executor"]);
		expect(first.environment.NODE_ID).not.toBe(second.environment.NODE_ID);
	});
});

describe("Dockerfile", () => {
	const dockerfile = read("Dockerfile");
	const stages = dockerfile.split("\n").filter(line => line.startsWith("FROM "));

	it("builds in one stage and runs on Node 22 in another with production dependencies only", () => {
		expect(stages).toEqual(["FROM node:22-bookworm-slim AS build", "FROM node:22-bookworm-slim AS runtime"]);
		const runtime = dockerfile.slice(dockerfile.indexOf("AS runtime"));
		expect(runtime).toMatch(/npm ci --omit=dev/);
		expect(runtime).toMatch(/COPY --from=build \/app\/dist \.\/dist/);
		expect(runtime).not.toMatch(/COPY (services|lib|test)/);
	});

	it("runs as a non-root user with a health check and a graceful stop signal", () => {
		expect(dockerfile).toMatch(/^USER node$/m);
		expect(dockerfile).toMatch(/^HEALTHCHECK .*dist\/scripts\/healthcheck\.js/m);
		expect(dockerfile).toMatch(/^STOPSIGNAL SIGTERM$/m);
		expect(existsSync(path.join(root, "scripts/healthcheck.ts"))).toBe(true);
	});

	it("copies every source folder the build compiles", () => {
		const build = JSON.parse(read("tsconfig.build.json")) as { include: string[] };
		for (const entry of build.include)
			expect(dockerfile).toContain(entry.endsWith(".ts") ? entry : `COPY ${entry} ./${entry}`);
	});
});
