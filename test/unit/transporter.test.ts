import { NatsTransporter, transporterFor } from "../../lib/transporter";

describe("the NATS transporter", () => {
	it("closes its connection on stop although the last flush failed (sent while NATS was unreachable)", async () => {
		const transporter = new NatsTransporter("nats://127.0.0.1:4222");
		const close = jest.fn(async () => undefined);
		transporter.client = { flush: () => Promise.reject(new Error("DISCONNECT")), close };
		await transporter.disconnect();
		expect(close).toHaveBeenCalledTimes(1);
		expect(transporter.client).toBeNull();
	});

	it("is what a nats:// TRANSPORTER gets; other values go to Moleculer as they are", () => {
		expect(transporterFor("nats://127.0.0.1:4222")).toBeInstanceOf(NatsTransporter);
		expect(transporterFor("redis://127.0.0.1:6379")).toBe("redis://127.0.0.1:6379");
		expect(transporterFor(undefined)).toBeNull();
	});
});
