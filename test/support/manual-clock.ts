import type { Clock, ClockTimer } from "../../lib/clock";

interface Scheduled {
	due: number;
	/** Set for an interval: its period. */
	every?: number;
	callback: () => void;
}

/** Lets every promise chain that is not waiting for I/O run to its end. */
export const settle = (): Promise<void> => new Promise(resolve => setImmediate(resolve));

/**
 * A clock that moves only when the test says so: `advance` runs the timers that fall due, in order,
 * and lets what they start settle before the next one fires. Its `Clock` methods are bound to it, so
 * the copy Moleculer makes of a service's settings (`settings: { clock }`) still reads and schedules
 * on this clock.
 */
export class ManualClock implements Clock {
	private readonly timers = new Map<ClockTimer, Scheduled>();

	constructor(private time = Date.now()) {}

	readonly now = (): number => this.time;

	readonly setTimeout = (callback: () => void, ms: number): ClockTimer =>
		this.schedule({ due: this.time + ms, callback });

	readonly setInterval = (callback: () => void, ms: number): ClockTimer => {
		const every = Math.max(1, ms);
		return this.schedule({ due: this.time + every, every, callback });
	};

	readonly clear = (timer: ClockTimer): void => {
		this.timers.delete(timer);
	};

	/** Timers waiting to fire. */
	get pending(): number {
		return this.timers.size;
	}

	async advance(ms: number): Promise<void> {
		const end = this.time + ms;
		for (;;) {
			const [timer, next] = [...this.timers].reduce<[ClockTimer | null, Scheduled | null]>(
				(earliest, [t, s]) => (s.due <= end && (!earliest[1] || s.due < earliest[1].due) ? [t, s] : earliest),
				[null, null]
			);
			if (!timer || !next) break;
			this.time = next.due;
			if (next.every) next.due += next.every;
			else this.timers.delete(timer);
			next.callback();
			await settle();
		}
		this.time = end;
		await settle();
	}

	private schedule(scheduled: Scheduled): ClockTimer {
		const timer: ClockTimer = { id: Symbol("timer") };
		this.timers.set(timer, scheduled);
		return timer;
	}
}
