import { ServiceBroker, Errors } from "moleculer";
import {
	conflict,
	definitionChanged,
	dependencyDown,
	isClientError,
	isConflict,
	isDefinitionChanged,
	isDependencyDown,
	isNameTaken,
	isNoNode,
	isStaleVersion,
	isUnavailable,
	nameTaken,
	notFound,
	staleVersion
} from "../../lib/errors";
import { errorHeaders, toErrorBody } from "../../lib/error-response";

/** What another node receives: the error as Moleculer serialises and rebuilds it. */
function acrossTheTransporter(err: Error): Error {
	const broker = new ServiceBroker({ logger: false });
	const regenerator = new Errors.Regenerator();
	regenerator.init(broker);
	return regenerator.restore(regenerator.extractPlainError(err as Errors.MoleculerError), {});
}

describe("named errors", () => {
	it.each([
		["locally", (err: Error) => err],
		["on another node", acrossTheTransporter]
	])("are told apart by their predicates %s", (_where, deliver) => {
		const taken = deliver(nameTaken("weather"));
		const stale = deliver(staleVersion(3));
		const changed = deliver(definitionChanged("abc"));
		const down = deliver(dependencyDown("Redis"));

		expect([isNameTaken(taken), isStaleVersion(taken), isConflict(taken)]).toEqual([true, false, true]);
		expect([isNameTaken(stale), isStaleVersion(stale), isConflict(stale)]).toEqual([false, true, true]);
		expect([isDefinitionChanged(changed), isNameTaken(changed)]).toEqual([true, false]);
		expect([isDependencyDown(down), isUnavailable(down), isClientError(down)]).toEqual([true, true, false]);
		expect(isNameTaken(deliver(conflict("busy")))).toBe(false);
	});

	it("keep the body's type and data the client switches on", () => {
		expect(toErrorBody(nameTaken("weather"))).toMatchObject({
			code: 409,
			type: "CONFLICT",
			data: { name: "weather" }
		});
		expect(toErrorBody(staleVersion(3))).toMatchObject({
			code: 409,
			type: "CONFLICT",
			data: { current_version: 3 }
		});
		expect(toErrorBody(definitionChanged("abc"))).toMatchObject({
			code: 409,
			type: "DEFINITION_CHANGED",
			data: { definition_hash: "abc" }
		});
	});

	it("tell a dependency outage to retry later with Retry-After", () => {
		const body = toErrorBody(dependencyDown("Redis", 7));
		expect(body).toMatchObject({ code: 503, type: "SERVICE_UNAVAILABLE", data: { dependency: "Redis" } });
		expect(errorHeaders(body)).toEqual({ "Retry-After": "7" });
	});

	it("report an action no node offers as unavailable, not as the caller's 404", () => {
		const noNode = new Errors.ServiceNotFoundError({ action: "executor.execute" });
		expect([isNoNode(noNode), isUnavailable(noNode)]).toEqual([true, true]);
		expect(toErrorBody(noNode)).toMatchObject({ code: 503, type: "SERVICE_UNAVAILABLE" });
		expect(isNoNode(notFound("Tool"))).toBe(false);
	});
});
