import type { BrokerOptions } from "moleculer";

/**
 * Broker options from the contract's environment (section 1). With no TRANSPORTER every
 * service runs in this one process; with `nats://...` nodes form one cluster.
 */
const config: BrokerOptions = {
	namespace: process.env.NAMESPACE ?? "",
	nodeID: process.env.NODE_ID || null,
	transporter: (process.env.TRANSPORTER || null) as BrokerOptions["transporter"],
	logger: {
		type: "Console",
		options: {
			// JSON lines for log shippers; human-readable otherwise.
			formatter: process.env.LOG_FORMAT === "json" ? "json" : "short",
			colors: process.env.LOG_FORMAT !== "json",
			moduleColors: false
		}
	},
	logLevel: (process.env.LOG_LEVEL as BrokerOptions["logLevel"]) ?? "info",
	serializer: "JSON",
	// Executions bring their own timeouts; this bounds everything else.
	requestTimeout: 30 * 1000,
	retryPolicy: { enabled: false },
	registry: { strategy: "RoundRobin", preferLocal: true },
	circuitBreaker: { enabled: false },
	bulkhead: { enabled: false },
	validator: true,
	tracking: { enabled: true, shutdownTimeout: 10 * 1000 },
	skipProcessEventRegistration: false
};

export = config;
