import type { ActionSchema, Context, EventSchema, Middleware, ServiceBroker } from "moleculer";
import { ownMetrics, type Family, type Histogram, type Labels, type Value } from "./own-metrics";

/** Moleculer's default request-time buckets (ms). */
const TIME_BUCKETS = [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

type Handler = (ctx: Context) => Promise<unknown>;
type Forward = (...args: unknown[]) => unknown;

interface Series {
	total: Value;
	active: Value;
	time: Histogram;
}

interface Families {
	total: Family<Value>;
	active: Family<Value>;
	errors: Family<Value>;
	time: Family<Histogram>;
}

function families(broker: ServiceBroker, kind: "request" | "event_received"): Families {
	const metrics = ownMetrics(broker);
	const what = kind === "request" ? "requests" : "received events";
	return {
		total: metrics.counter(`moleculer_${kind}_total`, `Number of ${what}`),
		active: metrics.gauge(`moleculer_${kind}_active`, `Number of active ${what}`),
		errors: metrics.counter(`moleculer_${kind}_error_total`, `Number of ${what} that failed`),
		time: metrics.histogram(
			`moleculer_${kind}_time`,
			`Handling time of ${what} in milliseconds`,
			TIME_BUCKETS
		)
	};
}

/** What a metered handler's series are keyed by: two strings read off the context, no allocation. */
type Keys = [first: (ctx: Context) => string, second: (ctx: Context) => string];

/**
 * Counts, times and errors of every handled request or event. Series are looked up by two strings of
 * the context (caller; event name) in maps kept per handler, so an update hashes no label object and
 * allocates nothing beyond the promise callbacks; failures build their key only when they happen.
 */
function measured(
	next: Handler,
	of: Families,
	labels: (ctx: Context) => Labels,
	[first, second]: Keys
): Handler {
	const cache = new Map<string, Map<string, Series>>();
	const seriesOf = (ctx: Context): Series => {
		let inner = cache.get(first(ctx));
		if (!inner) cache.set(first(ctx), (inner = new Map()));
		let series = inner.get(second(ctx));
		if (!series) {
			const l = labels(ctx);
			const k = JSON.stringify(l);
			series = {
				total: of.total.get(k) ?? of.total.add(k, l),
				active: of.active.get(k) ?? of.active.add(k, l),
				time: of.time.get(k) ?? of.time.add(k, l)
			};
			inner.set(second(ctx), series);
		}
		return series;
	};
	return function metered(ctx: Context) {
		const series = seriesOf(ctx);
		series.total.value++;
		series.active.value++;
		const started = performance.now();
		return next(ctx).then(
			result => {
				series.active.value--;
				series.time.observe(performance.now() - started);
				return result;
			},
			(err: { name?: string; code?: unknown; type?: string } | undefined) => {
				series.active.value--;
				series.time.observe(performance.now() - started);
				const l = {
					...labels(ctx),
					errorName: err?.name ?? null,
					errorCode: err?.code === undefined ? null : String(err.code),
					errorType: err?.type ?? null
				};
				const k = JSON.stringify(l);
				(of.errors.get(k) ?? of.errors.add(k, l)).value++;
				throw err;
			}
		);
	};
}

/** A counter keyed by one label, e.g. the event name or packet type. */
function countBy(family: Family<Value>, label: string) {
	return (value: string, by = 1) => {
		(family.get(value) ?? family.add(value, { [label]: value })).value += by;
	};
}

type Counted = "emit" | "broadcast" | "broadcastLocal" | "publish" | "receive";

/** The series and families of one broker. */
interface State {
	requests: Families;
	events: Families;
	levels: Family<Value>;
	count: Record<Counted, (value: string) => void>;
	transport: Record<"sent" | "sentBytes" | "received" | "receivedBytes" | "pending" | "streams", Value>;
}

const states = new WeakMap<ServiceBroker, State>();

function stateOf(broker: ServiceBroker): State {
	const known = states.get(broker);
	if (known) return known;
	const metrics = ownMetrics(broker);
	const one = (family: Family<Value>) => family.get("") ?? family.add("", {});
	const state: State = {
		requests: families(broker, "request"),
		events: families(broker, "event_received"),
		levels: metrics.counter("moleculer_request_levels", "Number of requests by context level"),
		count: {
			emit: countBy(metrics.counter("moleculer_event_emit_total", "Number of emitted events"), "event"),
			broadcast: countBy(
				metrics.counter("moleculer_event_broadcast_total", "Number of broadcast events"),
				"event"
			),
			broadcastLocal: countBy(
				metrics.counter("moleculer_event_broadcast_local_total", "Number of local broadcast events"),
				"event"
			),
			publish: countBy(
				metrics.counter("moleculer_transit_publish_total", "Number of published packets"),
				"type"
			),
			receive: countBy(
				metrics.counter("moleculer_transit_receive_total", "Number of received packets"),
				"type"
			)
		},
		transport: {
			sent: one(metrics.counter("moleculer_transporter_packets_sent_total", "Number of sent packets")),
			sentBytes: one(metrics.counter("moleculer_transporter_packets_sent_bytes", "Number of sent bytes")),
			received: one(
				metrics.counter("moleculer_transporter_packets_received_total", "Number of received packets")
			),
			receivedBytes: one(
				metrics.counter("moleculer_transporter_packets_received_bytes", "Number of received bytes")
			),
			pending: one(metrics.gauge("moleculer_transit_requests_active", "Number of active requests")),
			streams: one(metrics.gauge("moleculer_transit_streams_send_active", "Number of active sent streams"))
		}
	};
	states.set(broker, state);
	return state;
}

function action(type: "local" | "remote") {
	return function (this: ServiceBroker, next: Handler, schema: ActionSchema): Handler {
		const { requests, levels } = stateOf(this);
		const service = (schema.service as { fullName?: string } | undefined)?.fullName ?? null;
		const name = schema.name ?? null;
		const levelOf: Value[] = [];
		const timed = measured(next, requests, ctx => ({ service, action: name, type, caller: ctx.caller }), [
			() => "",
			ctx => ctx.caller ?? ""
		]);
		return (ctx: Context) => {
			const level = ctx.level ?? 0;
			(levelOf[level] ??= levels.get(String(level)) ?? levels.add(String(level), { level })).value++;
			return timed(ctx);
		};
	};
}

/** Counts a broker method's calls by its first argument (the event name). */
function counting(counted: Counted) {
	return function (this: ServiceBroker, next: Forward): Forward {
		const count = stateOf(this).count[counted];
		return function (this: unknown, ...args: unknown[]) {
			count(args[0] as string);
			return next.apply(this, args);
		};
	};
}

/** Counts a transporter's packets and their bytes (the packet is the second argument). */
function packets(count: "sent" | "received", bytes: "sentBytes" | "receivedBytes") {
	return function (this: { broker: ServiceBroker }, next: Forward): Forward {
		const { transport } = stateOf(this.broker);
		return function (this: unknown, ...args: unknown[]) {
			transport[count].value++;
			transport[bytes].value += (args[1] as Buffer | undefined)?.length ?? 0;
			return next.apply(this, args);
		};
	};
}

interface Transit {
	broker: ServiceBroker;
	pendingRequests: Map<unknown, unknown>;
	pendingReqStreams: Map<unknown, unknown>;
	pendingResStreams: Map<unknown, unknown>;
}

/**
 * Replaces Moleculer's built-in `Metrics` middleware (./broker-middlewares.ts lists the internal
 * middlewares without it) with the same metric names served from `OwnMetrics`: no sliding quantiles
 * or rates (Prometheus computes both from the counters and buckets), no per-call label hashing.
 * Caller labels are service names and event names come from code, so series stay bounded. State is
 * kept per broker (hooks run with the broker, or the transit, as `this`).
 */
export function RequestMetricsMiddleware(): Middleware {
	return {
		name: "RequestMetrics",
		created(broker: ServiceBroker) {
			stateOf(broker);
		},
		localAction: action("local"),
		remoteAction: action("remote"),
		localEvent(this: ServiceBroker, next: Handler, event: EventSchema) {
			const service = (event.service as { name?: string } | undefined)?.name ?? null;
			const group = (event.group as string | undefined) ?? service;
			return measured(
				next,
				stateOf(this).events,
				ctx => ({ service, group, event: ctx.eventName, caller: ctx.caller }),
				[ctx => ctx.eventName ?? "", ctx => ctx.caller ?? ""]
			);
		},
		emit: counting("emit"),
		broadcast: counting("broadcast"),
		broadcastLocal: counting("broadcastLocal"),
		transitPublish(this: Transit, next: Forward) {
			const transit = this;
			const { count, transport } = stateOf(transit.broker);
			return function (this: unknown, ...args: unknown[]) {
				count.publish((args[0] as { type: string }).type);
				const published = next.apply(this, args);
				transport.pending.value = transit.pendingRequests.size;
				transport.streams.value = transit.pendingReqStreams.size + transit.pendingResStreams.size;
				return published;
			};
		},
		transitMessageHandler(this: Transit, next: Forward) {
			const { count } = stateOf(this.broker);
			return function (this: unknown, ...args: unknown[]) {
				count.receive(args[0] as string);
				return next.apply(this, args);
			};
		},
		transporterSend: packets("sent", "sentBytes"),
		transporterReceive: packets("received", "receivedBytes")
	} as unknown as Middleware;
}
