import { createContext } from "preact";
import { useContext, useEffect, useState } from "preact/hooks";
import { api, type Capabilities, type Session } from "./api";
import type { LiveFeed } from "./live";

export interface ConsoleContext {
	session: Session;
	capabilities: Capabilities;
	live: LiveFeed;
	/** `api` bound to the session. */
	call: <T = unknown>(method: string, path: string, body?: unknown) => Promise<T>;
}

export const Console = createContext<ConsoleContext | null>(null);

export function useConsole(): ConsoleContext {
	const context = useContext(Console);
	if (!context) throw new Error("useConsole outside the signed-in console");
	return context;
}

export const bindApi =
	(session: Session) =>
	<T = unknown>(method: string, path: string, body?: unknown) =>
		api<T>(session, method, path, body);

/** Re-renders the caller on every change of the live feed (state or new frame). */
export function useLive(): LiveFeed {
	const { live } = useConsole();
	const [, setTick] = useState(0);
	useEffect(() => live.onChange(() => setTick(t => t + 1)), [live]);
	return live;
}

/** The current hash route, e.g. `#/tools/abc` → ["tools", "abc"]. */
export function useRoute(): string[] {
	const read = () =>
		location.hash
			.replace(/^#\/?/, "")
			.split("/")
			.filter(Boolean)
			.map(part => decodeURIComponent(part));
	const [route, setRoute] = useState(read);
	useEffect(() => {
		const onChange = () => setRoute(read());
		addEventListener("hashchange", onChange);
		return () => removeEventListener("hashchange", onChange);
	}, []);
	return route;
}

export const href = (...parts: string[]) => `#/${parts.map(encodeURIComponent).join("/")}`;
