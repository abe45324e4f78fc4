/**
 * Time as the task queue and the worker loop read it: the system clock in production, a clock the
 * test advances in tests (test/support/manual-clock.ts), so leases, backoffs and polls need no sleeps.
 */
export interface Clock {
	now(): number;
	setTimeout(callback: () => void, ms: number): ClockTimer;
	setInterval(callback: () => void, ms: number): ClockTimer;
	/** Cancels a timeout or an interval. */
	clear(timer: ClockTimer): void;
}

export type ClockTimer = { readonly id: unknown };

export const systemClock: Clock = {
	now: () => Date.now(),
	setTimeout: (callback, ms) => ({ id: setTimeout(callback, ms) }),
	setInterval: (callback, ms) => ({ id: setInterval(callback, ms) }),
	clear: timer => clearTimeout(timer.id as NodeJS.Timeout)
};

export const isoNow = (clock: Clock): string => new Date(clock.now()).toISOString();
